-- Look-alike emails. Keep in step with ../postgres/0006_email_skeleton.sql.
--
-- `email_skeleton` is the Unicode TR39 confusable skeleton of the normalized
-- email (arbor_core::text::Email::skeleton): `аdmin@x.io` with a Cyrillic а
-- has the skeleton of `admin@x.io`. The unique index makes two accounts with
-- look-alike emails impossible, also under concurrent inserts. SQL cannot
-- compute a skeleton: the `email_forms` task in store_upkeep makes the store
-- fill it (and re-normalize `email_normalized` as NFKC + lower case) in Rust
-- once, right after migrating; an older row whose skeleton another account
-- already has keeps NULL (allowed any number of times) and a warning is
-- logged.
ALTER TABLE users ADD COLUMN email_skeleton TEXT;
CREATE UNIQUE INDEX users_email_skeleton ON users(email_skeleton);
INSERT OR IGNORE INTO store_upkeep (task) VALUES ('email_forms');
