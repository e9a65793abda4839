WITH chosen AS MATERIALIZED 
(SELECT jobs.id AS id 
FROM jobs JOIN requests ON requests.id = jobs.request_id 
WHERE jobs.state = 'queued' AND jobs.kind = $6::VARCHAR AND requests.max_length <= $7::INTEGER AND requests.max_context_length <= $8::INTEGER AND requests.any_model = true AND (requests.has_worker_list = false OR requests.worker_blacklist = false AND (EXISTS (SELECT * 
FROM request_workers 
WHERE request_workers.request_id = requests.id AND request_workers.worker_id = $3::UUID)) OR requests.worker_blacklist = true AND NOT (EXISTS (SELECT * 
FROM request_workers 
WHERE request_workers.request_id = requests.id AND request_workers.worker_id = $3::UUID))) AND (requests.softprompt = '' OR requests.softprompt LIKE $9::VARCHAR ESCAPE '/' OR requests.softprompt LIKE $10::VARCHAR ESCAPE '/') ORDER BY jobs.priority_key DESC, jobs.id DESC 
 LIMIT $11::INTEGER FOR UPDATE OF jobs SKIP LOCKED)
 UPDATE jobs SET state=$1::VARCHAR, model=$2::VARCHAR, worker_id=$3::UUID, started_at=$4::FLOAT, lease_expires_at=($4::FLOAT + (SELECT requests.ttl 
FROM requests 
WHERE requests.id = jobs.request_id) * $5::FLOAT) FROM chosen WHERE jobs.id = chosen.id AND jobs.state = 'queued' RETURNING jobs.id, jobs.request_id, jobs.seed, jobs.form, jobs.model, jobs.position
