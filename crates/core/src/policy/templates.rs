//! Decisions on device templates (SPEC.md section 1 and the `templates.*`
//! permissions).
//!
//! - Viewing needs `templates.view`. A member of the hierarchy's root org sees
//!   every template of the hierarchy; a member of a sub-org sees only the
//!   templates enabled for its context org. Without `templates.view`, or for
//!   a template it may not see, the template is absent (404).
//! - Creating, editing and deleting need `templates.create` / `.edit` /
//!   `.delete` held by a member of the root org. A sub-org member who sees
//!   the template is forbidden (403).
//! - Enabling and disabling a template for an org is decided at that org's
//!   parent (`templates.edit` there; for the root org, at the root), so a
//!   sub-org's Admin cannot change what its own org may use.
//! - Another hierarchy's template is absent.

use super::{
    CreateDeviceTemplate, DeleteDeviceTemplate, DisableDeviceTemplate, EditDeviceTemplate,
    EnableDeviceTemplate, Refusal, Verdict, check, verdict,
};
use crate::decision::{Actor, Decision, Outcome, Rule};
use crate::ids::{DeviceTemplateId, OrgId};
use crate::org::OrgPath;
use crate::permission::Permission;

/// What a template decision needs to know about the template.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TemplateFacts {
    pub id: DeviceTemplateId,
    /// The hierarchy (root org id) the template belongs to.
    pub hierarchy: OrgId,
    /// Whether the template is enabled for the actor's context org.
    pub enabled_in_context: bool,
}

/// Which templates a list shows: the hierarchy's, and with `enabled_for`
/// only those enabled for that org. Exactly what
/// [`Actor::view_device_template`] allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TemplateFilter {
    pub hierarchy: OrgId,
    pub enabled_for: Option<OrgId>,
}

impl Actor {
    fn in_root_org(&self) -> bool {
        self.home().depth() == 1
    }

    /// A device template (`templates.create` in the hierarchy's root org;
    /// `root` is the org named as its home).
    pub fn create_device_template(&self, root: &OrgPath) -> Verdict<CreateDeviceTemplate> {
        verdict(
            self.decide_device_template(Permission::TemplatesCreate, root),
            root.id(),
        )
    }

    /// A device template in the actor's own hierarchy: decided on the
    /// actor's home org, so a sub-org member is forbidden (the root-org
    /// rule), not told the hierarchy is absent.
    pub fn create_device_template_here(&self) -> Verdict<CreateDeviceTemplate> {
        self.create_device_template(self.home())
    }

    /// Seeing a template (module docs).
    pub fn view_device_template(&self, template: &TemplateFacts) -> Decision {
        if template.hierarchy != self.hierarchy() {
            return self.absent();
        }
        let permission = Permission::TemplatesView;
        let at = if self.in_root_org() {
            self.home()
        } else if template.enabled_in_context {
            self.context_path()
        } else {
            return self.decision(
                Outcome::Hidden,
                Rule::NotVisible,
                self.context_path(),
                Some(permission),
            );
        };
        let decision = self.decide_org(permission, at);
        if decision.outcome == Outcome::Forbidden {
            // Without templates.view there is nothing to see.
            return Decision {
                outcome: Outcome::Hidden,
                rule: Rule::NotVisible,
                ..decision
            };
        }
        decision
    }

    /// The templates a list shows, or `None` for an actor who may see none.
    pub fn list_device_templates(&self) -> Option<TemplateFilter> {
        if !self.permissions().contains(Permission::TemplatesView) {
            return None;
        }
        Some(TemplateFilter {
            hierarchy: self.hierarchy(),
            enabled_for: (!self.in_root_org()).then(|| self.context()),
        })
    }

    /// A visible template changed with `permission` (edit or delete): only
    /// by root-org members holding it.
    fn change_device_template(
        &self,
        permission: Permission,
        template: &TemplateFacts,
    ) -> Result<Decision, Refusal> {
        let seen = self.view_device_template(template);
        if !seen.is_allowed() {
            return Err(Refusal::Denied(seen));
        }
        let decision = self.decide_device_template(permission, self.home());
        if decision.is_allowed() {
            Ok(decision)
        } else {
            Err(Refusal::Denied(decision))
        }
    }

    /// Editing a template's name, description and parts.
    pub fn edit_device_template(&self, template: &TemplateFacts) -> Verdict<EditDeviceTemplate> {
        let decision = self.change_device_template(Permission::TemplatesEdit, template)?;
        verdict(decision, template.id)
    }

    /// Deleting a template (refused later while devices use it).
    pub fn delete_device_template(
        &self,
        template: &TemplateFacts,
    ) -> Verdict<DeleteDeviceTemplate> {
        let decision = self.change_device_template(Permission::TemplatesDelete, template)?;
        verdict(decision, template.id)
    }

    /// The decision on changing which templates `org` may use: the template
    /// of the org's hierarchy, the org visible, `templates.edit` at the
    /// org's parent (at the root for the root org).
    fn decide_template_availability(
        &self,
        org: &OrgPath,
        template_hierarchy: OrgId,
    ) -> Result<Decision, Refusal> {
        if template_hierarchy != org.root_id() {
            return Err(Refusal::Denied(self.absent()));
        }
        let seen = self.view_org(org);
        if !seen.is_allowed() {
            return Err(Refusal::Denied(seen));
        }
        let at = match org.parent_id() {
            Some(_) => OrgPath::from_ids(org.ids()[..org.depth() - 1].to_vec()),
            None => Ok(org.clone()),
        };
        let at = check(&seen, at)?;
        let decision = self.decide_org(Permission::TemplatesEdit, &at);
        let decision = Decision {
            target_org: Some(org.id()),
            ..decision
        };
        if decision.is_allowed() {
            Ok(decision)
        } else {
            Err(Refusal::Denied(decision))
        }
    }

    /// Enabling a template of hierarchy `template_hierarchy` for `org`. A
    /// template of another hierarchy is absent; the org must be visible; and
    /// the decision is taken at the org's parent (`templates.edit` there; for
    /// the root org, at the root), so a sub-org's Admin cannot enable
    /// templates for its own org.
    pub fn enable_device_template(
        &self,
        org: &OrgPath,
        template_hierarchy: OrgId,
    ) -> Verdict<EnableDeviceTemplate> {
        let decision = self.decide_template_availability(org, template_hierarchy)?;
        verdict(decision, org.id())
    }

    /// [`Actor::enable_device_template`] for a template the actor must see
    /// first (so no one learns of templates by enabling them).
    pub fn enable_visible_template(
        &self,
        org: &OrgPath,
        template: &TemplateFacts,
    ) -> Verdict<EnableDeviceTemplate> {
        let seen = self.view_device_template(template);
        if !seen.is_allowed() {
            return Err(Refusal::Denied(seen));
        }
        self.enable_device_template(org, template.hierarchy)
    }

    /// Disabling a template the actor sees for `org`: decided like enabling.
    pub fn disable_device_template(
        &self,
        org: &OrgPath,
        template: &TemplateFacts,
    ) -> Verdict<DisableDeviceTemplate> {
        let seen = self.view_device_template(template);
        if !seen.is_allowed() {
            return Err(Refusal::Denied(seen));
        }
        let decision = self.decide_template_availability(org, template.hierarchy)?;
        verdict(decision, (org.id(), template.id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::permission::PermissionSet;
    use crate::policy::testing::{actor, path};

    fn facts(hierarchy: i64, enabled_in_context: bool) -> TemplateFacts {
        TemplateFacts {
            id: DeviceTemplateId(7),
            hierarchy: OrgId(hierarchy),
            enabled_in_context,
        }
    }

    fn outcome<T>(verdict: Result<T, Refusal>) -> Outcome {
        match verdict {
            Ok(_) => Outcome::Allowed,
            Err(refusal) => refusal.decision().outcome,
        }
    }

    fn viewer() -> PermissionSet {
        PermissionSet::from([Permission::TemplatesView]).closed()
    }

    #[test]
    fn root_members_see_every_template_of_their_hierarchy_only() {
        let root = actor(&path(&[1]), viewer());
        assert!(root.view_device_template(&facts(1, false)).is_allowed());
        assert_eq!(
            root.view_device_template(&facts(9, true)).outcome,
            Outcome::Hidden
        );
        assert_eq!(
            root.list_device_templates(),
            Some(TemplateFilter {
                hierarchy: OrgId(1),
                enabled_for: None
            })
        );
    }

    #[test]
    fn sub_org_members_see_only_templates_enabled_for_their_org() {
        let child = actor(&path(&[1, 2]), PermissionSet::all());
        assert!(child.view_device_template(&facts(1, true)).is_allowed());
        assert_eq!(
            child.view_device_template(&facts(1, false)).outcome,
            Outcome::Hidden
        );
        assert_eq!(
            child.list_device_templates(),
            Some(TemplateFilter {
                hierarchy: OrgId(1),
                enabled_for: Some(OrgId(2))
            })
        );
    }

    #[test]
    fn without_templates_view_nothing_is_visible() {
        let blind = actor(&path(&[1]), PermissionSet::EMPTY);
        assert_eq!(
            blind.view_device_template(&facts(1, true)).outcome,
            Outcome::Hidden
        );
        assert_eq!(blind.list_device_templates(), None);
        assert_eq!(
            outcome(blind.edit_device_template(&facts(1, true))),
            Outcome::Hidden
        );
    }

    #[test]
    fn only_root_members_with_the_permission_edit_and_delete() {
        let admin = actor(&path(&[1]), PermissionSet::all());
        assert!(admin.edit_device_template(&facts(1, false)).is_ok());
        assert!(admin.delete_device_template(&facts(1, false)).is_ok());
        assert_eq!(
            outcome(admin.delete_device_template(&facts(9, false))),
            Outcome::Hidden
        );
        let viewer = actor(&path(&[1]), viewer());
        assert_eq!(
            outcome(viewer.edit_device_template(&facts(1, false))),
            Outcome::Forbidden
        );
        let child_admin = actor(&path(&[1, 2]), PermissionSet::all());
        let visible = child_admin.edit_device_template(&facts(1, true));
        assert!(
            matches!(&visible, Err(Refusal::Denied(d)) if d.rule == Rule::RootOrgOnly),
            "{visible:?}"
        );
        assert_eq!(
            outcome(child_admin.delete_device_template(&facts(1, true))),
            Outcome::Forbidden
        );
        assert_eq!(
            outcome(child_admin.delete_device_template(&facts(1, false))),
            Outcome::Hidden
        );
    }

    #[test]
    fn creating_is_for_root_members_and_forbidden_below() {
        let admin = actor(&path(&[1]), PermissionSet::all());
        assert!(admin.create_device_template_here().is_ok());
        let child_admin = actor(&path(&[1, 2]), PermissionSet::all());
        assert_eq!(
            outcome(child_admin.create_device_template_here()),
            Outcome::Forbidden
        );
        assert_eq!(
            outcome(child_admin.create_device_template(&path(&[1]))),
            Outcome::Hidden
        );
    }

    #[test]
    fn templates_are_enabled_by_the_parent_within_the_hierarchy() {
        let child = path(&[1, 2]);
        let grandchild = path(&[1, 2, 3]);
        let child_admin = actor(&child, PermissionSet::all());
        // Its own org: decided at the root, outside its scope.
        let own = child_admin.enable_device_template(&child, OrgId(1));
        assert!(matches!(own, Err(Refusal::Denied(d)) if d.outcome == Outcome::Hidden));
        assert!(
            child_admin
                .enable_device_template(&grandchild, OrgId(1))
                .is_ok()
        );
        // Another hierarchy's template.
        let other = child_admin.enable_device_template(&grandchild, OrgId(9));
        assert!(matches!(other, Err(Refusal::Denied(d)) if d.outcome == Outcome::Hidden));
    }

    #[test]
    fn disabling_is_decided_like_enabling_for_a_visible_template() {
        let child = path(&[1, 2]);
        let grandchild = path(&[1, 2, 3]);
        let child_admin = actor(&child, PermissionSet::all());
        assert!(
            child_admin
                .disable_device_template(&grandchild, &facts(1, true))
                .is_ok()
        );
        assert_eq!(
            outcome(child_admin.disable_device_template(&child, &facts(1, true))),
            Outcome::Hidden
        );
        // A template it does not see cannot be enabled or disabled below.
        assert_eq!(
            outcome(child_admin.disable_device_template(&grandchild, &facts(1, false))),
            Outcome::Hidden
        );
        assert_eq!(
            outcome(child_admin.enable_visible_template(&grandchild, &facts(1, false))),
            Outcome::Hidden
        );
        let root_admin = actor(&path(&[1]), PermissionSet::all());
        assert!(
            root_admin
                .disable_device_template(&child, &facts(1, false))
                .is_ok()
        );
        assert!(
            root_admin
                .enable_visible_template(&child, &facts(1, false))
                .is_ok()
        );
    }
}
