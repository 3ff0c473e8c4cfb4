//! The plan every driver shares.

use std::collections::{BTreeMap, BTreeSet};

use super::*;
use crate::decl::{RealmClient, RealmUser, Secret};

fn realm() -> Realm {
    Realm {
        roles: vec!["admin".into(), "user".into()],
        users: vec![RealmUser {
            username: "ada".into(),
            email: "ada@x.example".into(),
            first_name: "Ada".into(),
            last_name: "L".into(),
            password: Secret::new("pw"),
            roles: BTreeSet::from(["admin".to_string()]),
            enabled: true,
        }],
        clients: vec![RealmClient {
            client_id: "finctl".into(),
            secret: Secret::new("s"),
            grant_types: BTreeSet::from(["password".to_string()]),
            redirect_uris: BTreeSet::new(),
            audience: "finctl".into(),
        }],
        ..Realm::default()
    }
}

fn in_place(realm: &Realm) -> Observed {
    Observed {
        realm: true,
        roles: realm.roles.iter().cloned().collect(),
        users: BTreeMap::from([(
            "ada".to_string(),
            ObservedUser {
                email: Some("ada@x.example".into()),
                first_name: Some("Ada".into()),
                last_name: Some("L".into()),
                enabled: true,
                roles: BTreeSet::from(["admin".to_string()]),
            },
        )]),
        clients: BTreeMap::from([(
            "finctl".to_string(),
            ObservedClient {
                grant_types: BTreeSet::from(["password".to_string()]),
                redirect_uris: BTreeSet::new(),
                audience: Some("finctl".into()),
                secret_matches: Some(true),
            },
        )]),
        role_claim: Some(true),
    }
}

#[test]
fn nothing_observed_creates_everything_in_order() {
    let steps: Vec<Step> = plan(&realm(), &Observed::default())
        .into_iter()
        .filter_map(|(_, s)| s)
        .collect();
    assert_eq!(
        steps,
        [
            Step::CreateRealm,
            Step::CreateRole("admin".into()),
            Step::CreateRole("user".into()),
            Step::CreateClient("finctl".into()),
            Step::CreateUser("ada".into()),
        ]
    );
}

#[test]
fn everything_in_place_is_unchanged() {
    let r = realm();
    let rows = plan(&r, &in_place(&r));
    assert!(
        rows.iter()
            .all(|(c, s)| c.action == Action::Unchanged && s.is_none()),
        "{rows:?}"
    );
    assert_eq!(rows.len(), 1 + 2 + 1 + 1 + 1);
}

#[test]
fn only_the_fields_that_differ_are_updated_and_undeclared_roles_stay() {
    let r = realm();
    let mut seen = in_place(&r);
    let ada = seen.users.get_mut("ada").unwrap();
    ada.email = Some("old@x.example".into());
    // `user` is declared (ada should not have it); `auditor` is not declared: left alone.
    ada.roles = BTreeSet::from(["user".to_string(), "auditor".to_string()]);
    seen.clients.get_mut("finctl").unwrap().secret_matches = Some(false);
    seen.role_claim = Some(false);
    let steps: Vec<Step> = plan(&r, &seen).into_iter().filter_map(|(_, s)| s).collect();
    assert_eq!(
        steps,
        [
            Step::MapRoleClaim,
            Step::UpdateClient {
                client_id: "finctl".into(),
                fields: vec!["secret".into()]
            },
            Step::UpdateUser {
                username: "ada".into(),
                fields: vec!["email".into(), "roles".into()],
                add_roles: vec!["admin".into()],
                remove_roles: vec!["user".into()],
            },
        ]
    );
}

#[test]
fn an_idp_that_maps_roles_itself_has_no_role_claim_row() {
    let r = realm();
    let mut seen = in_place(&r);
    seen.role_claim = None;
    assert!(plan(&r, &seen).iter().all(|(c, _)| c.kind != "role-claim"));
}
