use super::*;

const PASSWD: &str = "\
# a comment
root:x:0:0:root:/root:/bin/sh

daemon:x:1:1::/:/bin/false
alice:x:1000:1000:Alice:/home/alice:/bin/sh
bob:x:1001:100::/home/bob:/bin/sh
broken:x:notanumber:5::/:/bin/sh
";

const GROUP: &str = "\
root:x:0:
users:x:100:alice
wheel:x:10:alice, bob
alice:x:1000:
audio:x:29:bob
";

fn user(uid: &str, gid: &str, extra: &[&str]) -> StringUser {
    StringUser {
        uid: uid.into(),
        gid: gid.into(),
        additional_gids: extra.iter().map(|s| s.to_string()).collect(),
    }
}

fn ok(u: StringUser) -> ResolvedUser {
    resolve(&u, 0, 0, Some(PASSWD), Some(GROUP)).expect("resolves")
}

fn resolved(uid: u32, gid: u32, extra: &[u32]) -> ResolvedUser {
    ResolvedUser {
        uid,
        gid,
        additional_gids: extra.to_vec(),
    }
}

#[test]
fn parsers_skip_comments_blank_and_bad_lines() {
    let users = parse_passwd(PASSWD);
    let names: Vec<&str> = users.iter().map(|u| u.name.as_str()).collect();
    assert_eq!(names, ["root", "daemon", "alice", "bob"]);
    let groups = parse_group(GROUP);
    assert_eq!(groups[2].members, ["alice", "bob"]);
    assert!(groups[0].members.is_empty());
}

#[test]
fn a_name_gives_uid_gid_and_memberships() {
    assert_eq!(ok(user("alice", "", &[])), resolved(1000, 1000, &[100, 10]));
    assert_eq!(ok(user("bob", "", &[])), resolved(1001, 100, &[10, 29]));
}

#[test]
fn a_group_replaces_the_gid_and_the_implicit_groups() {
    assert_eq!(ok(user("alice:audio", "", &[])), resolved(1000, 29, &[]));
    assert_eq!(ok(user("alice", "wheel", &[])), resolved(1000, 10, &[]));
    assert_eq!(ok(user("alice", "4242", &[])), resolved(1000, 4242, &[]));
}

#[test]
fn numbers_match_entries_or_stand_alone() {
    assert_eq!(ok(user("1001", "", &[])), resolved(1001, 100, &[10, 29]));
    assert_eq!(ok(user("5000", "", &[])), resolved(5000, 0, &[]));
    assert_eq!(ok(user("5000:6000", "", &[])), resolved(5000, 6000, &[]));
}

#[test]
fn additional_groups_are_added_once() {
    let r = ok(user("alice", "", &["audio", "10", "777"]));
    assert_eq!(r, resolved(1000, 1000, &[100, 10, 29, 777]));
}

#[test]
fn an_empty_uid_keeps_the_spec_user() {
    let r = resolve(&user("", "audio", &[]), 1000, 7, Some(PASSWD), Some(GROUP)).unwrap();
    assert_eq!(r, resolved(1000, 29, &[]));
}

#[test]
fn without_passwd_numbers_work_and_names_fail() {
    let r = resolve(&user("123:456", "", &[]), 0, 0, None, None).unwrap();
    assert_eq!(r, resolved(123, 456, &[]));
    let e = resolve(&user("alice", "", &[]), 0, 0, None, None).unwrap_err();
    assert!(matches!(&e, UserError::NoPasswd(n) if n == "alice"), "{e}");
    assert!(e.to_string().contains("\"alice\""));
    let e = resolve(&user("1", "audio", &[]), 0, 0, Some(PASSWD), None).unwrap_err();
    assert!(
        matches!(&e, UserError::NoGroupFile(n) if n == "audio"),
        "{e}"
    );
}

#[test]
fn unknown_names_are_named() {
    let e = resolve(&user("mallory", "", &[]), 0, 0, Some(PASSWD), Some(GROUP)).unwrap_err();
    assert!(matches!(&e, UserError::UnknownUser(n) if n == "mallory"));
    assert!(e.to_string().contains("unknown user \"mallory\""), "{e}");
    let e = resolve(
        &user("alice:nogroup", "", &[]),
        0,
        0,
        Some(PASSWD),
        Some(GROUP),
    );
    assert!(matches!(e, Err(UserError::UnknownGroup(n)) if n == "nogroup"));
    let e = resolve(
        &user("alice", "", &["ghosts"]),
        0,
        0,
        Some(PASSWD),
        Some(GROUP),
    );
    assert!(matches!(e, Err(UserError::UnknownGroup(n)) if n == "ghosts"));
}

#[test]
fn bad_forms_are_refused() {
    let e = resolve(&user("alice:users", "wheel", &[]), 0, 0, None, None);
    assert!(matches!(e, Err(UserError::GroupTwice { .. })));
    let e = resolve(&user("4294967295", "", &[]), 0, 0, None, None);
    assert!(matches!(e, Err(UserError::Invalid { field: "uid", .. })));
    let e = resolve(&user("1", "", &["2147483648"]), 0, 0, None, None);
    assert!(matches!(
        e,
        Err(UserError::Invalid {
            field: "additionalGids",
            ..
        })
    ));
}
