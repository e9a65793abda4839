WITH chosen AS MATERIALIZED 
(SELECT jobs.id AS id 
FROM jobs JOIN requests ON requests.id = jobs.request_id 
WHERE jobs.state = 'queued' AND jobs.kind = $8::VARCHAR AND requests.pixels <= $9::INTEGER AND (EXISTS (SELECT * 
FROM request_models 
WHERE request_models.request_id = requests.id AND request_models.model = ANY ($2::VARCHAR(255)[]))) AND (requests.has_worker_list = false OR requests.worker_blacklist = false AND (EXISTS (SELECT * 
FROM request_workers 
WHERE request_workers.request_id = requests.id AND request_workers.worker_id = $5::UUID)) OR requests.worker_blacklist = true AND NOT (EXISTS (SELECT * 
FROM request_workers 
WHERE request_workers.request_id = requests.id AND request_workers.worker_id = $5::UUID))) AND requests.unsafe_ip = false AND requests.over_average_steps = false ORDER BY jobs.priority_key DESC, jobs.id DESC 
 LIMIT $10::INTEGER FOR UPDATE OF jobs SKIP LOCKED)
 UPDATE jobs SET state=$1::VARCHAR, model=coalesce((SELECT request_models.model 
FROM request_models 
WHERE request_models.request_id = jobs.request_id AND request_models.model = ANY ($2::VARCHAR(255)[]) ORDER BY random() 
 LIMIT $3::INTEGER), $4::VARCHAR), worker_id=$5::UUID, started_at=$6::FLOAT, lease_expires_at=($6::FLOAT + (SELECT requests.ttl 
FROM requests 
WHERE requests.id = jobs.request_id) * $7::FLOAT) FROM chosen WHERE jobs.id = chosen.id AND jobs.state = 'queued' RETURNING jobs.id, jobs.request_id, jobs.seed, jobs.form, jobs.model, jobs.position
