//! Device templates: create, read, list, edit and delete in the root org;
//! enable and disable for an org, decided at its parent (arbor-core's
//! `policy/templates.rs`). Every change is one transaction with its audit
//! event (`template.create`, `.edit`, `.delete`, `.enable`, `.disable`).

use crate::run::{Decides, Found, read_case, write_case};
use crate::{App, AppError, Caller};
use arbor_core::policy::TemplateFacts;
use arbor_core::template::{Datastream, Event, Metafield, TemplateContent};
use arbor_core::{Actor, OrgId};
use arbor_store::{
    AuditEvent, DeviceTemplateId, DeviceTemplateRecord, DeviceTemplateSummary, StoreError, Tx,
};

/// What an edit changes; `None` keeps the field. A part list given
/// replaces that list whole.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TemplateEdit {
    pub name: Option<String>,
    pub description: Option<String>,
    pub datastreams: Option<Vec<Datastream>>,
    pub events: Option<Vec<Event>>,
    pub metafields: Option<Vec<Metafield>>,
    /// `Some(None)` goes back to the server's default retention.
    pub history_retention_days: Option<Option<i64>>,
}

impl TemplateEdit {
    fn apply(&self, mut content: TemplateContent) -> TemplateContent {
        if let Some(name) = &self.name {
            content.name = name.clone();
        }
        if let Some(description) = &self.description {
            content.description = description.clone();
        }
        if let Some(datastreams) = &self.datastreams {
            content.datastreams = datastreams.clone();
        }
        if let Some(events) = &self.events {
            content.events = events.clone();
        }
        if let Some(metafields) = &self.metafields {
            content.metafields = metafields.clone();
        }
        if let Some(days) = self.history_retention_days {
            content.history_retention_days = days;
        }
        content
    }
}

fn template_event(caller: &Caller, action: &'static str, id: DeviceTemplateId) -> AuditEvent {
    AuditEvent::new(caller.client, action, format!("device_template:{id}"))
}

/// The facts of template `id` for `actor` (NotFound if there is none).
async fn facts<M>(
    tx: &mut Tx<M>,
    actor: &Actor,
    id: DeviceTemplateId,
) -> Result<TemplateFacts, StoreError> {
    let hierarchy = tx.device_template_hierarchy(id).await?;
    let enabled_in_context = tx.template_enabled(actor.context(), id).await?;
    Ok(TemplateFacts {
        id,
        hierarchy,
        enabled_in_context,
    })
}

/// The template as `actor` is shown it: only the orgs it may see among
/// those the template is enabled for.
fn shown(actor: &Actor, mut record: DeviceTemplateRecord) -> DeviceTemplateRecord {
    record
        .enabled_for
        .retain(|org| actor.view_org(org).is_allowed());
    record
}

fn devices_use_it(n: i64, where_: &str) -> AppError {
    let devices = if n == 1 { "device" } else { "devices" };
    AppError::ConflictWith {
        what: format!("the template is used by {n} {devices}{where_}"),
        details: serde_json::json!({ "devices": n }),
    }
}

impl App {
    /// Creates a device template in the caller's hierarchy (`templates.create`
    /// in the root org), enabled for the root org. Invalid content answers
    /// 400 and changes nothing.
    pub async fn create_template(
        &self,
        caller: &Caller,
        content: TemplateContent,
    ) -> Result<DeviceTemplateRecord, AppError> {
        let checked = content.checked()?;
        let event = AuditEvent::new(caller.client, "template.create", "device_template:*")
            .detail("name", &checked.content().name);
        write_case!(self, caller, event, |step| {
            let verdict = step.actor.create_device_template_here();
            let by = step.allow(verdict, "organization")?;
            let root = *by.target();
            let id = step.tx.insert_template(&by, root, &checked).await?;
            step.tx.enable_template(&by, root, id).await?;
            step.event.target = format!("device_template:{id}");
            step.note("datastreams", checked.content().datastreams.len());
            step.note("events", checked.content().events.len());
            step.note("metafields", checked.content().metafields.len());
            let record = step.tx.device_template(id).await?;
            Ok(shown(&step.actor, record))
        })
    }

    /// One template, if the caller may see it (else NotFound).
    pub async fn device_template(
        &self,
        caller: &Caller,
        id: DeviceTemplateId,
    ) -> Result<DeviceTemplateRecord, AppError> {
        let event = template_event(caller, "template.view", id);
        read_case!(self, caller, event, |step| {
            let facts = facts(&mut step.tx, &step.actor, id)
                .await
                .found(step, "device template")?;
            let decision = step.actor.view_device_template(&facts);
            step.require(decision, "device template")?;
            let record = step.tx.device_template(id).await?;
            Ok(shown(&step.actor, record))
        })
    }

    /// The templates the caller may see: the whole hierarchy's for a
    /// root-org member, those enabled for the context org otherwise.
    pub async fn list_templates(
        &self,
        caller: &Caller,
    ) -> Result<Vec<DeviceTemplateSummary>, AppError> {
        let event = AuditEvent::new(caller.client, "template.list", "device_template:*");
        read_case!(self, caller, event, |step| {
            match step.actor.list_device_templates() {
                Some(filter) => Ok(step.tx.list_device_templates(&filter).await?),
                None => Ok(Vec::new()),
            }
        })
    }

    /// Edits a template (`templates.edit` in the root org): the fields given
    /// replace the stored ones, the result must pass the content rules.
    pub async fn edit_template(
        &self,
        caller: &Caller,
        id: DeviceTemplateId,
        edit: &TemplateEdit,
    ) -> Result<DeviceTemplateRecord, AppError> {
        let event = template_event(caller, "template.edit", id);
        write_case!(self, caller, event, |step| {
            let facts = facts(&mut step.tx, &step.actor, id)
                .await
                .found(step, "device template")?;
            let verdict = step.actor.edit_device_template(&facts);
            let by = step.allow(verdict, "device template")?;
            step.tx.lock_device_template(id).await?;
            let stored = step.tx.device_template(id).await?;
            step.note("name", &stored.content.name);
            let checked = match edit.apply(stored.content).checked() {
                Ok(checked) => checked,
                Err(e) => return Err(step.fail(e.into())),
            };
            step.tx.replace_template(&by, id, &checked).await?;
            let record = step.tx.device_template(id).await?;
            Ok(shown(&step.actor, record))
        })
    }

    /// Deletes a template (`templates.delete` in the root org); refused with
    /// the count while devices use it.
    pub async fn delete_template(
        &self,
        caller: &Caller,
        id: DeviceTemplateId,
    ) -> Result<(), AppError> {
        let event = template_event(caller, "template.delete", id);
        write_case!(self, caller, event, |step| {
            let facts = facts(&mut step.tx, &step.actor, id)
                .await
                .found(step, "device template")?;
            let verdict = step.actor.delete_device_template(&facts);
            let by = step.allow(verdict, "device template")?;
            step.tx.lock_device_template(id).await?;
            let stored = step.tx.device_template(id).await?;
            step.note("name", &stored.content.name);
            let used = step.tx.template_device_count(id, None).await?;
            if used > 0 {
                return Err(step.fail(devices_use_it(used, "")));
            }
            step.tx.delete_template(&by, id).await?;
            Ok(())
        })
    }

    /// Enables a template the caller sees for `org` (decided at the org's
    /// parent, `templates.edit` there).
    pub async fn enable_template(
        &self,
        caller: &Caller,
        id: DeviceTemplateId,
        org: OrgId,
    ) -> Result<(), AppError> {
        let event = template_event(caller, "template.enable", id)
            .target_org(org)
            .detail("org", org);
        write_case!(self, caller, event, |step| {
            let record = step.locked_org(org).await?;
            let facts = facts(&mut step.tx, &step.actor, id)
                .await
                .found(step, "device template")?;
            let verdict = step.actor.enable_visible_template(&record.path, &facts);
            let by = step.allow(verdict, "device template")?;
            step.tx.enable_template(&by, org, id).await?;
            Ok(())
        })
    }

    /// Disables a template for `org` (decided like enabling); refused with
    /// the count while devices of it live in that org.
    pub async fn disable_template(
        &self,
        caller: &Caller,
        id: DeviceTemplateId,
        org: OrgId,
    ) -> Result<(), AppError> {
        let event = template_event(caller, "template.disable", id)
            .target_org(org)
            .detail("org", org);
        write_case!(self, caller, event, |step| {
            let record = step.locked_org(org).await?;
            let facts = facts(&mut step.tx, &step.actor, id)
                .await
                .found(step, "device template")?;
            let verdict = step.actor.disable_device_template(&record.path, &facts);
            let by = step.allow(verdict, "device template")?;
            step.tx.lock_device_template(id).await?;
            let used = step.tx.template_device_count(id, Some(org)).await?;
            if used > 0 {
                return Err(step.fail(devices_use_it(used, " in this organization")));
            }
            let was_enabled = step.tx.disable_template(&by, org, id).await?;
            step.note("was_enabled", was_enabled);
            Ok(())
        })
    }
}
