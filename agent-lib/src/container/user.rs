//! `string_user`: a user and groups given by name, resolved against the container's own
//! /etc/passwd and /etc/group with runc's rules (libcontainer/user `GetExecUser`).
//!
//! The parsers and [`resolve`] are pure; [`super::user_db`] reads the two files.
//!
//! | given | /etc/passwd | result |
//! |---|---|---|
//! | numeric uid | missing | that uid, the spec's gid |
//! | numeric uid | has it | that uid, its gid, its groups |
//! | name | has it | its uid, gid and groups |
//! | name | missing, or no such entry | `INVALID_ARGUMENT` naming the user |
//!
//! A group (`name:group`, or the `gid` field) replaces the gid and drops the implicit
//! supplementary groups, as in runc; `additionalGids` are added to the supplementary groups.

/// The largest uid or gid runc accepts (`MaxInt32`).
const MAX_ID: u32 = i32::MAX as u32;

/// `StringUser` of CreateContainer and ExecProcess: `uid` is a user name or number, optionally
/// followed by `:group`; `gid` a group name or number; `additional_gids` names or numbers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StringUser {
    /// `name`, `uid`, `name:group` or `uid:gid`; empty keeps the spec's uid.
    pub uid: String,
    /// A group name or number; empty keeps the user's primary group.
    pub gid: String,
    /// Supplementary groups, by name or number.
    pub additional_gids: Vec<String>,
}

impl StringUser {
    /// Whether nothing is asked for (the host sent an empty message).
    pub fn is_empty(&self) -> bool {
        self.uid.is_empty() && self.gid.is_empty() && self.additional_gids.is_empty()
    }
}

/// What a [`StringUser`] resolves to.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResolvedUser {
    /// The uid.
    pub uid: u32,
    /// The primary gid.
    pub gid: u32,
    /// Supplementary groups: the user's memberships, then the requested ones; no duplicates.
    pub additional_gids: Vec<u32>,
}

/// Why a `string_user` cannot be resolved.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    /// No passwd entry has this name.
    #[error("string_user: unknown user {0:?}: no such entry in the container's /etc/passwd")]
    UnknownUser(String),
    /// A user name, but the container has no /etc/passwd (runc refuses too).
    #[error("string_user: user {0:?} given by name, but the container has no /etc/passwd")]
    NoPasswd(String),
    /// No group entry has this name.
    #[error("string_user: unknown group {0:?}: no such entry in the container's /etc/group")]
    UnknownGroup(String),
    /// A group name, but the container has no /etc/group.
    #[error("string_user: group {0:?} given by name, but the container has no /etc/group")]
    NoGroupFile(String),
    /// A number above 2147483647, or an empty name.
    #[error("string_user.{field}: invalid value {value:?}")]
    Invalid {
        /// `uid`, `gid` or `additionalGids`.
        field: &'static str,
        /// The value as given.
        value: String,
    },
    /// Both `uid` as `user:group` and `gid` name a group.
    #[error("string_user: the group is given twice (uid {uid:?} and gid {gid:?})")]
    GroupTwice {
        /// The uid field.
        uid: String,
        /// The gid field.
        gid: String,
    },
    /// The container's file could not be read.
    #[error("string_user: cannot read the container's {file}")]
    Read {
        /// `/etc/passwd` or `/etc/group`.
        file: &'static str,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// One line of /etc/passwd.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PasswdEntry {
    /// The user name.
    pub name: String,
    /// The uid.
    pub uid: u32,
    /// The primary gid.
    pub gid: u32,
}

/// One line of /etc/group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupEntry {
    /// The group name.
    pub name: String,
    /// The gid.
    pub gid: u32,
    /// Member user names.
    pub members: Vec<String>,
}

/// The useful lines of passwd-formatted text (`name:x:uid:gid:gecos:home:shell`). Blank
/// lines, comments and lines whose ids are not numbers are skipped (runc would read a bad id
/// as 0: root).
pub fn parse_passwd(text: &str) -> Vec<PasswdEntry> {
    records(text)
        .filter_map(|f| {
            Some(PasswdEntry {
                name: f.first()?.to_string(),
                uid: parse_id(f.get(2)?)?,
                gid: parse_id(f.get(3)?)?,
            })
        })
        .collect()
}

/// The useful lines of group-formatted text (`name:x:gid:user1,user2`).
pub fn parse_group(text: &str) -> Vec<GroupEntry> {
    records(text)
        .filter_map(|f| {
            let members = f.get(3).copied().unwrap_or_default();
            Some(GroupEntry {
                name: f.first()?.to_string(),
                gid: parse_id(f.get(2)?)?,
                members: members
                    .split(',')
                    .map(str::trim)
                    .filter(|m| !m.is_empty())
                    .map(str::to_owned)
                    .collect(),
            })
        })
        .collect()
}

fn records(text: &str) -> impl Iterator<Item = Vec<&str>> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.split(':').collect())
}

/// Plain decimal digits within runc's range.
fn parse_id(text: &str) -> Option<u32> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok().filter(|id| *id <= MAX_ID)
}

/// A user or group argument: a number when it is all digits (then it must be in range).
fn numeric(field: &'static str, text: &str) -> Result<Option<u32>, UserError> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(None);
    }
    parse_id(text).map(Some).ok_or_else(|| UserError::Invalid {
        field,
        value: text.to_owned(),
    })
}

/// Resolves `user` as runc would, over the container's files (`None`: the file is missing).
/// `default_uid` and `default_gid` are the spec's `process.user`.
pub fn resolve(
    user: &StringUser,
    default_uid: u32,
    default_gid: u32,
    passwd: Option<&str>,
    group: Option<&str>,
) -> Result<ResolvedUser, UserError> {
    let (user_arg, group_arg) = match user.uid.split_once(':') {
        Some(_) if !user.gid.is_empty() => {
            return Err(UserError::GroupTwice {
                uid: user.uid.clone(),
                gid: user.gid.clone(),
            });
        }
        Some((u, g)) => (u, g),
        None => (user.uid.as_str(), user.gid.as_str()),
    };
    let users = passwd.map(parse_passwd);
    let groups = group.map(parse_group);
    let mut out = ResolvedUser {
        uid: default_uid,
        gid: default_gid,
        additional_gids: Vec::new(),
    };

    let uid_arg = numeric("uid", user_arg)?;
    let matched = users.as_deref().unwrap_or_default().iter().find(|u| {
        match (user_arg.is_empty(), uid_arg) {
            (true, _) => u.uid == default_uid,
            (false, Some(uid)) => u.uid == uid,
            (false, None) => u.name == user_arg,
        }
    });
    match (matched, uid_arg) {
        (Some(entry), _) => {
            out.uid = entry.uid;
            out.gid = entry.gid;
        }
        (None, Some(uid)) => out.uid = uid,
        (None, None) if user_arg.is_empty() => {}
        (None, None) if users.is_none() => return Err(UserError::NoPasswd(user_arg.to_owned())),
        (None, None) => return Err(UserError::UnknownUser(user_arg.to_owned())),
    }

    let group_list = groups.as_deref().unwrap_or_default();
    if !group_arg.is_empty() {
        out.gid = group_id("gid", group_arg, group_list, groups.is_some())?;
    } else if let Some(entry) = matched {
        out.additional_gids = group_list
            .iter()
            .filter(|g| g.members.contains(&entry.name))
            .map(|g| g.gid)
            .collect();
    }
    for extra in &user.additional_gids {
        let gid = group_id("additionalGids", extra, group_list, groups.is_some())?;
        out.additional_gids.push(gid);
    }
    let mut seen = std::collections::HashSet::new();
    out.additional_gids.retain(|g| seen.insert(*g));
    Ok(out)
}

/// A group by number (with or without an entry) or by name (which needs one).
fn group_id(
    field: &'static str,
    arg: &str,
    groups: &[GroupEntry],
    have_file: bool,
) -> Result<u32, UserError> {
    if let Some(gid) = numeric(field, arg)? {
        return Ok(gid);
    }
    if let Some(entry) = groups.iter().find(|g| g.name == arg) {
        return Ok(entry.gid);
    }
    Err(match have_file {
        true => UserError::UnknownGroup(arg.to_owned()),
        false => UserError::NoGroupFile(arg.to_owned()),
    })
}

#[cfg(test)]
#[path = "user_tests.rs"]
mod tests;
