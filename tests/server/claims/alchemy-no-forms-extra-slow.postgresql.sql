WITH chosen AS MATERIALIZED 
(SELECT jobs.id AS id 
FROM jobs JOIN requests ON requests.id = jobs.request_id 
WHERE false ORDER BY jobs.priority_key DESC, jobs.id DESC 
 LIMIT $5::INTEGER FOR UPDATE OF jobs SKIP LOCKED)
 UPDATE jobs SET state=$1::VARCHAR, model=jobs.form, worker_id=$2::UUID, started_at=$3::FLOAT, lease_expires_at=($3::FLOAT + (SELECT requests.ttl 
FROM requests 
WHERE requests.id = jobs.request_id) * $4::FLOAT) FROM chosen WHERE jobs.id = chosen.id AND jobs.state = 'queued' RETURNING jobs.id, jobs.request_id, jobs.seed, jobs.form, jobs.model, jobs.position
