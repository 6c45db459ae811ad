-- A run's worker as its spawner recorded it (opaque JSON: a process id and start time
-- locally, a Slurm job id on a cluster), to watch, cancel and find it again after a
-- hub restart whatever runs it.
ALTER TABLE runs.runs ADD COLUMN worker jsonb;
UPDATE runs.runs SET worker = jsonb_build_object('pid', worker_pid, 'started', worker_started)
    WHERE worker_pid IS NOT NULL;
ALTER TABLE runs.runs DROP COLUMN worker_pid, DROP COLUMN worker_started;
