//! Staff accounts as admins run them: the first admin (`herald create-admin`), invitations,
//! roles, deactivation and password resets; and everyone's own password. A password is set
//! only by its owner: an invitation or a reset makes a one-time link (never a password sent
//! in clear), shown once to the admin who made it.

use chrono::TimeDelta;

use super::auth::{hash_password, new_session_token, token_hash};
use super::limits::SignInLimits;
use super::password;
use crate::model::{CurrentUser, Role};
use crate::server::AppState;
use crate::server::db::{AuditEntry, Db, StaffError, TokenPurpose};

/// How long an invitation link works.
pub const INVITE_DAYS: i64 = 7;
/// How long a password-reset link works.
pub const RESET_HOURS: i64 = 24;

/// `raw` as an account's email (trimmed, lower case), or why it is not one.
pub fn valid_email(raw: &str) -> Result<String, String> {
    let email = raw.trim().to_lowercase();
    let ok = email.len() <= 254
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !domain.contains('@')
        });
    if ok {
        Ok(email)
    } else {
        Err(format!("“{}” is not an email address.", raw.trim()))
    }
}

/// A name for an account: trimmed, 1 to 100 characters.
fn valid_name(raw: &str) -> Result<String, String> {
    let name = raw.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err("Enter a name of up to 100 characters.".into());
    }
    Ok(name.to_string())
}

/// An argon2 hash of `password`; on the server within the verification slots (`limits`), so
/// password forms cannot run more argon2 at once than signing in may.
async fn hash(limits: Option<&SignInLimits>, password: &str) -> Result<String, String> {
    let password = password.to_string();
    let work = move || hash_password(&password);
    let hashed = match limits {
        Some(l) => l.run(work).await.map_err(|r| r.to_string())?,
        None => tokio::task::spawn_blocking(work)
            .await
            .map_err(|_| "The password could not be stored; please try again.".to_string())?,
    };
    hashed.map_err(|_| "The password could not be stored; please try again.".to_string())
}

fn unavailable(e: impl std::fmt::Debug) -> String {
    tracing::error!(error = ?e, "an account change failed");
    "Nothing was changed: the database is unavailable. Please try again.".into()
}

fn refused(e: StaffError) -> String {
    match e {
        StaffError::Db(e) => unavailable(e),
        e => format!("Cannot do that: {e}."),
    }
}

/// The first admin (or any admin the operator makes from the command line).
pub async fn create_first_admin(
    db: &Db,
    email: &str,
    name: &str,
    password: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<i64, String> {
    let email = valid_email(email)?;
    let name = valid_name(name)?;
    password::check(password, &[&email, &name])?;
    let hash = hash(None, password).await?;
    let audit = AuditEntry::new(now, None, "create_account", "staff_user", None)
        .detail(format!("{email} as admin, from the command line"));
    db.create_staff(&email, &name, Role::Admin, &hash, &audit)
        .await
        .map_err(refused)
}

/// Makes a one-time link that sets account `id`'s password; the path to show the admin.
async fn password_link(
    state: &AppState,
    admin: &CurrentUser,
    id: i64,
    purpose: TokenPurpose,
) -> Result<String, String> {
    let now = state.clock.now();
    let token = new_session_token();
    let expires = match purpose {
        TokenPurpose::Invite => now + TimeDelta::days(INVITE_DAYS),
        TokenPurpose::Reset => now + TimeDelta::hours(RESET_HOURS),
    };
    let action = match purpose {
        TokenPurpose::Invite => "invite",
        TokenPurpose::Reset => "reset_password",
    };
    let audit = AuditEntry::new(now, Some(admin.id), action, "staff_user", Some(id));
    state
        .db
        .create_password_token(&token_hash(&token), id, purpose, expires, &audit)
        .await
        .map_err(unavailable)?;
    // In the fragment: browsers never send it, so no log or proxy on the way keeps it.
    Ok(format!("{}/password#token={token}", state.links.public_url))
}

/// An invitation: a new account with `role` and no password yet, and the link (valid
/// [`INVITE_DAYS`]) with which its owner chooses one.
pub async fn invite(
    state: &AppState,
    admin: &CurrentUser,
    email: &str,
    name: &str,
    role: Role,
) -> Result<(String, String), String> {
    let email = valid_email(email)?;
    let name = valid_name(name)?;
    let audit = AuditEntry::new(
        state.clock.now(),
        Some(admin.id),
        "create_account",
        "staff_user",
        None,
    )
    .detail(format!("{email} as {role}"));
    let id = state
        .db
        .create_staff(&email, &name, role, "", &audit)
        .await
        .map_err(refused)?;
    let link = password_link(state, admin, id, TokenPurpose::Invite).await?;
    Ok((
        format!(
            "Invited {name} as {role}. Send them this link to choose a password (it works once, for {INVITE_DAYS} days):"
        ),
        link,
    ))
}

/// A password reset: the account's old password keeps working until the link (valid
/// [`RESET_HOURS`]) is used, which ends all its sessions.
pub async fn reset(
    state: &AppState,
    admin: &CurrentUser,
    id: i64,
) -> Result<(String, String), String> {
    let staff = state.db.list_staff().await.map_err(unavailable)?;
    let Some(who) = staff
        .into_iter()
        .find(|s| s.id == id && s.deactivated_at.is_none())
    else {
        return Err("Cannot do that: no such active account.".into());
    };
    let link = password_link(state, admin, id, TokenPurpose::Reset).await?;
    Ok((
        format!(
            "Send {} this link to choose a new password (it works once, for {RESET_HOURS} hours):",
            who.name
        ),
        link,
    ))
}

/// Gives account `id` `role`; the last active admin stays an admin.
pub async fn set_role(
    state: &AppState,
    admin: &CurrentUser,
    id: i64,
    role: Role,
) -> Result<String, String> {
    let audit = AuditEntry::new(
        state.clock.now(),
        Some(admin.id),
        "change_role",
        "staff_user",
        Some(id),
    )
    .detail(format!("to {role}"));
    state
        .db
        .set_staff_role(id, role, &audit)
        .await
        .map_err(refused)?;
    Ok(format!("The role is now {role}."))
}

/// Deactivates account `id` (its sessions end at once) or activates it again.
pub async fn set_active(
    state: &AppState,
    admin: &CurrentUser,
    id: i64,
    active: bool,
) -> Result<String, String> {
    if !active && id == admin.id.0 {
        return Err("You cannot deactivate your own account.".into());
    }
    let action = if active { "reactivate" } else { "deactivate" };
    let audit = AuditEntry::new(
        state.clock.now(),
        Some(admin.id),
        action,
        "staff_user",
        Some(id),
    );
    state
        .db
        .set_staff_active(id, active, &audit)
        .await
        .map_err(refused)?;
    Ok(if active {
        "The account can sign in again.".into()
    } else {
        "Deactivated: they are signed out everywhere and cannot sign in. Their broadcasts and history stay.".into()
    })
}

/// The signed-in person changes their own password, proving they know the current one (a
/// check under the same limits as signing in, its failures audited). Their other sessions
/// end; `session` (this one) stays.
pub async fn change_own(
    state: &AppState,
    user: &CurrentUser,
    session: &str,
    address: Option<std::net::IpAddr>,
    form: &OwnPassword<'_>,
) -> Result<String, String> {
    if form.new != form.again {
        return Err("The two new passwords differ.".into());
    }
    if form.current.len() > password::MAX_BYTES {
        return Err("The current password is not right.".into());
    }
    let record = state
        .db
        .user_by_email(&user.email)
        .await
        .map_err(unavailable)?
        .ok_or("Cannot do that: no such account.")?;
    let attempt = super::guard::Attempt {
        email: &user.email,
        address,
        action: "change_password_failed",
        actor: Some(user.id),
        subject: Some(user.id.0),
    };
    let known = super::guard::check(state, &attempt, form.current, record.password_hash)
        .await
        .map_err(|e| e.to_string())?;
    if !known {
        return Err("The current password is not right.".into());
    }
    password::check(form.new, &[&user.email, &user.name])?;
    let hash = hash(Some(&state.accounts.sign_in), form.new).await?;
    let audit = AuditEntry::new(
        state.clock.now(),
        Some(user.id),
        "change_password",
        "staff_user",
        Some(user.id.0),
    );
    state
        .db
        .set_password(user.id, &hash, &token_hash(session), &audit)
        .await
        .map_err(unavailable)?;
    Ok("Your password is changed; your other sessions are signed out.".into())
}

/// The own-password form: the current password and the new one twice.
pub struct OwnPassword<'a> {
    pub current: &'a str,
    pub new: &'a str,
    pub again: &'a str,
}

/// The email of the account a password link is for, while the link works.
pub async fn link_email(state: &AppState, token: &str) -> Result<Option<String>, String> {
    let found = state
        .db
        .password_token_user(&token_hash(token), state.clock.now())
        .await
        .map_err(unavailable)?;
    Ok(found.map(|(_, email)| email))
}

/// Uses a password link: its account's password becomes `new` and every session of it ends.
pub async fn set_with_link(
    state: &AppState,
    token: &str,
    new: &str,
    again: &str,
) -> Result<String, String> {
    let expired =
        || "This link has been used or has expired. Ask an admin for a new one.".to_string();
    let Some(email) = link_email(state, token).await? else {
        return Err(expired());
    };
    if new != again {
        return Err("The two passwords differ.".into());
    }
    password::check(new, &[&email])?;
    let hash = hash(Some(&state.accounts.sign_in), new).await?;
    let audit = AuditEntry::new(state.clock.now(), None, "set_password", "staff_user", None);
    match state
        .db
        .use_password_token(&token_hash(token), &hash, &audit)
        .await
    {
        Ok(Some(_)) => Ok("Your password is set. Sign in with it.".into()),
        Ok(None) => Err(expired()),
        Err(e) => Err(unavailable(e)),
    }
}

/// The staff page's data for `admin`: every account, the one `confirm` names (about to be
/// deactivated), and the notice `flash` if it is theirs.
pub async fn page(
    state: &AppState,
    admin: &CurrentUser,
    flash: Option<&str>,
    confirm: Option<i64>,
) -> Result<crate::model::staff::StaffPage, crate::model::AppError> {
    use crate::model::staff::{StaffPage, StaffRow, Standing};
    let tz = crate::server::timefmt::zone(&admin.time_zone);
    let rows: Vec<StaffRow> = state
        .db
        .list_staff()
        .await?
        .into_iter()
        .filter_map(|s| {
            let standing = match (s.deactivated_at, s.has_password) {
                (Some(_), _) => Standing::Deactivated,
                (None, false) => Standing::Invited,
                (None, true) => Standing::Active,
            };
            Some(StaffRow {
                role: Role::parse(&s.role)?,
                standing,
                created: crate::server::timefmt::local(s.created_at, tz),
                id: s.id,
                email: s.email,
                name: s.name,
            })
        })
        .collect();
    let flash = flash
        .and_then(|id| state.accounts.take_flash(admin.id, id))
        .map(|f| (f.message, f.link));
    let confirm = confirm.and_then(|id| rows.iter().find(|r| r.id == id).cloned());
    Ok(StaffPage {
        rows,
        confirm,
        flash,
        me: admin.id.0,
        disk: crate::server::storage::usage(state).await?,
    })
}
