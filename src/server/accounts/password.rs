//! The rule every new password meets: at least 12 characters, and not one a cracker tries
//! early. Strength is Dropbox's zxcvbn estimate (the `zxcvbn` crate, maintained, with its
//! own lists of common passwords, names and words, keyboard walks and dates), with the
//! account's own email and name, and the product's name, counted as guessable. Score 3 of 4
//! or better passes: at least 10^8 guesses, zxcvbn's "safely unguessable" against an
//! offline attack on a slow hash (argon2 here).

use zxcvbn::Score;

pub const MIN_CHARS: usize = 12;
/// Longer passwords are refused before hashing (argon2 takes any length, but a megabyte
/// password is an attack, not a password).
pub const MAX_BYTES: usize = 1024;
/// zxcvbn's cost grows with length; what follows the first 100 characters only adds strength.
const ESTIMATED_CHARS: usize = 100;

/// Why `password` is refused, in words for the person choosing it; `known` are things about
/// them an attacker knows (their email, their name).
pub fn check(password: &str, known: &[&str]) -> Result<(), String> {
    if password.chars().count() < MIN_CHARS {
        return Err(format!(
            "Choose a password of at least {MIN_CHARS} characters."
        ));
    }
    if password.len() > MAX_BYTES {
        return Err(format!("Choose a password of at most {MAX_BYTES} bytes."));
    }
    let head: String = password.chars().take(ESTIMATED_CHARS).collect();
    // The product's own name is the first word a guesser tries here.
    let mut inputs: Vec<&str> = vec!["herald", "broadcast"];
    for k in known {
        inputs.push(k);
        inputs.extend(
            k.split(|c: char| !c.is_alphanumeric())
                .filter(|w| w.len() > 2),
        );
    }
    let estimate = zxcvbn::zxcvbn(&head, &inputs);
    if estimate.score() >= Score::Three {
        return Ok(());
    }
    let why = estimate
        .feedback()
        .and_then(|f| f.warning())
        .map(|w| format!(" {w}"))
        .unwrap_or_default();
    Err(format!(
        "That password is too easy to guess.{why} A few unrelated words together make a strong one."
    ))
}

#[cfg(test)]
mod tests {
    use super::check;

    #[test]
    fn short_common_and_personal_passwords_are_refused() {
        assert!(check("short", &[]).unwrap_err().contains("at least 12"));
        for weak in [
            "password1234",
            "qwertyuiop12",
            "Password123!",
            "letmein12345",
            "111111111111",
        ] {
            assert!(check(weak, &[]).is_err(), "{weak} accepted");
        }
        let me = ["ann.lee@example.com", "Ann Lee"];
        assert!(
            check("ann.lee@example.com", &me).is_err(),
            "their own email"
        );
        assert!(
            check(&"x".repeat(2000), &[])
                .unwrap_err()
                .contains("at most")
        );
    }

    #[test]
    fn long_unrelated_words_pass() {
        assert_eq!(check("correct horse battery staple", &[]), Ok(()));
        assert_eq!(check("Violet-Kettle-Harbor-93", &[]), Ok(()));
    }
}
