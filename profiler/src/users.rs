//! User names and uids: `-u USER` resolved to uids at start, and uids named once each for
//! display.

use std::collections::HashMap;

/// User names by uid, looked up once each.
#[derive(Default)]
pub struct UserNames {
    cache: HashMap<u32, String>,
}

impl UserNames {
    pub fn name(&mut self, uid: u32) -> &str {
        self.cache
            .entry(uid)
            .or_insert_with(|| match nix::unistd::User::from_uid(uid.into()) {
                Ok(Some(u)) => u.name,
                _ => uid.to_string(),
            })
    }

    /// The name of a uid already looked up by [`UserNames::name`].
    pub fn cached(&self, uid: u32) -> Option<&str> {
        self.cache.get(&uid).map(String::as_str)
    }
}

/// A `--user` argument that is neither a user name nor a uid.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("no such user: {0}")]
pub struct NoSuchUser(pub String);

/// Resolves `--user` arguments (names or numeric uids) to uids.
pub fn resolve_users(users: &[String]) -> Result<Vec<u32>, NoSuchUser> {
    users
        .iter()
        .map(|u| match nix::unistd::User::from_name(u) {
            Ok(Some(user)) => Ok(user.uid.as_raw()),
            _ => u.parse::<u32>().map_err(|_| NoSuchUser(u.clone())),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_resolve_by_name_or_number() {
        assert_eq!(
            resolve_users(&["root".into(), "1234".into()]),
            Ok(vec![0, 1234])
        );
        assert_eq!(
            resolve_users(&["no-such-user-here".into()])
                .unwrap_err()
                .to_string(),
            "no such user: no-such-user-here"
        );
    }
}
