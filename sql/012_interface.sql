-- Each person's default interface: where "Open" and the landing after a start lead.
-- 'lab' (JupyterLab) or 'tree' (Notebook 7); NULL: the hub's c.GilHub.landing_path.
ALTER TABLE users ADD COLUMN interface text CHECK (interface IN ('lab', 'tree'));
