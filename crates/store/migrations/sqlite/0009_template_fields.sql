-- Device template content (issue 11): a datastream's default value (text;
-- numbers in decimal form), decimals shown (double datastreams), enum values
-- (a JSON array of strings), and when a template was last edited.
ALTER TABLE template_datastreams ADD COLUMN default_value TEXT;
ALTER TABLE template_datastreams ADD COLUMN decimals INTEGER CHECK (decimals BETWEEN 0 AND 6);
ALTER TABLE template_datastreams ADD COLUMN enum_values TEXT NOT NULL DEFAULT '[]';
ALTER TABLE device_templates ADD COLUMN updated_at INTEGER;
CREATE INDEX org_templates_template ON org_templates(template_id, org_id);
