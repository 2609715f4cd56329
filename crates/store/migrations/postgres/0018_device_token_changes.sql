-- A device's auth token is a fact the device API's token cache keeps
-- (issue 12): regenerating it records a change, so every node's cache
-- drops the old token before its next batch of device writes. Keep in
-- step with ../sqlite/0018_device_token_changes.sql. (0017 is the
-- history retention migration.)
CREATE TRIGGER authz_devices_token AFTER UPDATE OF auth_token_hash ON devices
    FOR EACH ROW EXECUTE FUNCTION authz_record_change('device', 'id');
