-- A device's auth token is derived, not stored: token = base64url of the
-- first 24 bytes of HMAC-SHA256(server key, "arbor-device-token-v1" ||
-- device id || nonce). The row keeps the nonce of the latest (re)generation
-- and the SHA-256 of the token (auth_token_hash, still UNIQUE: the device
-- API looks devices up by it), never the token. Devices made before this
-- migration have no nonce: their token cannot be shown again until it is
-- regenerated. Keep in step with ../sqlite/0010_device_tokens.sql.
ALTER TABLE devices ADD COLUMN auth_token_nonce TEXT;
