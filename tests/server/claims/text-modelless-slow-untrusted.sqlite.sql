WITH chosen AS 
(SELECT jobs.id AS id 
FROM jobs JOIN requests ON requests.id = jobs.request_id 
WHERE jobs.state = 'queued' AND jobs.kind = ? AND requests.max_length <= ? AND requests.max_context_length <= ? AND requests.any_model = 1 AND (requests.has_worker_list = 0 OR requests.worker_blacklist = 0 AND (EXISTS (SELECT * 
FROM request_workers 
WHERE request_workers.request_id = requests.id AND request_workers.worker_id = ?)) OR requests.worker_blacklist = 1 AND NOT (EXISTS (SELECT * 
FROM request_workers 
WHERE request_workers.request_id = requests.id AND request_workers.worker_id = ?))) AND requests.slow_workers = 1 AND requests.trusted_workers = 0 AND requests.softprompt = '' ORDER BY jobs.priority_key DESC, jobs.id DESC
 LIMIT ? OFFSET ?)
 UPDATE jobs SET state=?, model=?, worker_id=?, started_at=?, lease_expires_at=(? + (SELECT requests.ttl 
FROM requests 
WHERE requests.id = jobs.request_id) * ?) FROM chosen WHERE jobs.id = chosen.id AND jobs.state = 'queued' RETURNING id, request_id, seed, form, model, position
