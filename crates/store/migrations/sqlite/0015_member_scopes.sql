-- Which org subtrees each membership lies in: one row per ancestor of the
-- membership's org, the org itself and the root included (a member of org
-- /1/7/42/ has rows for 1, 7 and 42).
--
-- A user list for an Admin of a subtree ("users with a membership in the
-- subtree of 7, by id") reads its page from this key in user id order, so
-- the first page costs the same whatever the size of the subtree or of the
-- server. Without it the list walked users by id testing each one's
-- memberships (most of them outside a small subtree) or gathered and
-- sorted all the subtree's members (3.0 ms p50 for a level-2 Admin at
-- 1,000,000 users, 1.1 ms at 100,000).
--
-- Maintained by the store (arbor_store::Tx) wherever a membership is made
-- (insert_membership, org delete moving members up) or an org gets a new
-- parent (move_subtree); rows go with their membership. Keep in step with
-- ../postgres/0015_member_scopes.sql.
CREATE TABLE member_scopes (
    ancestor_id INTEGER NOT NULL REFERENCES organizations(id),
    user_id     INTEGER NOT NULL,
    org_id      INTEGER NOT NULL,
    PRIMARY KEY (ancestor_id, user_id, org_id),
    FOREIGN KEY (user_id, org_id) REFERENCES memberships(user_id, org_id) ON DELETE CASCADE
) WITHOUT ROWID;
CREATE INDEX member_scopes_membership ON member_scopes(user_id, org_id);

-- Existing memberships: the orgs whose subtree range holds the member's org.
INSERT INTO member_scopes (ancestor_id, user_id, org_id)
SELECT a.id, m.user_id, m.org_id
FROM organizations a
JOIN organizations o
  ON o.path >= a.path AND o.path < substr(a.path, 1, length(a.path) - 1) || '0'
JOIN memberships m ON m.org_id = o.id
ORDER BY a.id, m.user_id, m.org_id;
