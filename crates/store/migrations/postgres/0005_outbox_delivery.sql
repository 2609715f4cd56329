-- Outbox delivery on several nodes, and no live link at rest once mail is
-- sent. Keep in step with ../sqlite/0005_outbox_delivery.sql.
--
-- kind, user_id    what the mail's link is for ('invitation', 'password_reset')
--                  and whose it is, so that revoking or resending an
--                  invitation (or using the link) cancels the unsent mail in
--                  the same transaction. No foreign key: the row of a sent
--                  mail outlives its user.
-- announced_at     when a node without SMTP logged its one-line notice: once
--                  per mail, not again at every start.
-- claimed_by,      the delivery lease: a node claims a row with one
-- lease_until      conditional UPDATE and only it delivers the row until the
--                  lease runs out (arbor_store::mail).
-- next_attempt_at  a failed delivery backs off until then.
ALTER TABLE outbox ADD COLUMN kind TEXT CHECK (kind IN ('invitation', 'password_reset'));
ALTER TABLE outbox ADD COLUMN user_id BIGINT;
ALTER TABLE outbox ADD COLUMN announced_at BIGINT;
ALTER TABLE outbox ADD COLUMN claimed_by TEXT;
ALTER TABLE outbox ADD COLUMN lease_until BIGINT;
ALTER TABLE outbox ADD COLUMN next_attempt_at BIGINT NOT NULL DEFAULT 0;

-- Mail already sent keeps no body: it carried a one-time link.
UPDATE outbox SET body = '' WHERE sent_at IS NOT NULL;

CREATE INDEX outbox_pending ON outbox(id) WHERE sent_at IS NULL;
CREATE INDEX outbox_pending_user ON outbox(user_id, kind) WHERE sent_at IS NULL;
