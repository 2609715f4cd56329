-- Failed-login counters, shared by every server node (arbor_store `throttle`).
-- Keep in step with ../sqlite/0004_login_failures.sql.
--
-- One row per (account, client) pair, and one per client alone (account ''):
-- `account` is the SHA-256 (hex) of the normalized email as typed, whether or
-- not such an account exists; `client` the client's address. `failures`
-- counts the attempts reserved before their password was verified (a correct
-- password deletes its pair's row and gives its client's reservation back);
-- `blocked_until` (unix ms) is when the next attempt may run. Rows idle for
-- the configured time are pruned (`App::prune_login_failures`).
CREATE TABLE login_failures (
    account         TEXT    NOT NULL,
    client          TEXT    NOT NULL,
    failures        BIGINT  NOT NULL,
    last_failure_at BIGINT  NOT NULL,
    blocked_until   BIGINT  NOT NULL,
    PRIMARY KEY (account, client)
);
CREATE INDEX login_failures_last ON login_failures(last_failure_at);
