WITH chosen AS 
(SELECT jobs.id AS id 
FROM jobs JOIN requests ON requests.id = jobs.request_id 
WHERE 0 = 1 ORDER BY jobs.priority_key DESC, jobs.id DESC
 LIMIT ? OFFSET ?)
 UPDATE jobs SET state=?, model=jobs.form, worker_id=?, started_at=?, lease_expires_at=(? + (SELECT requests.ttl 
FROM requests 
WHERE requests.id = jobs.request_id) * ?) FROM chosen WHERE jobs.id = chosen.id AND jobs.state = 'queued' RETURNING id, request_id, seed, form, model, position
