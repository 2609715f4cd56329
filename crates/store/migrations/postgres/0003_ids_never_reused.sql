-- Ids are never reused. Keep in step with ../sqlite/0003_ids_never_reused.sql.
--
-- Nothing to change here: identity columns draw from sequences, which never
-- hand out a value twice, even after the row holding the largest id is
-- deleted. SQLite needed its tables rebuilt with AUTOINCREMENT for the same
-- guarantee; this file keeps the two engines' migration versions in step.
SELECT 1;
