//! `kairosdb hash-secret`: prints the hash of a password or token to paste into the
//! `[auth]` table, so no secret is ever written in a configuration file.
//!
//! The secret is read from standard input (its first line, without the line end), never
//! from the command line, where `ps` and the shell history would see it.

use std::io::{BufRead, Write};

use super::credentials;

/// Hash a secret for the `[auth]` table of the configuration file.
///
/// Reads the secret from the first line of standard input and prints its hash on stdout:
/// an Argon2id PHC string (`$argon2id$...`) for a user's `password_hash`, or with --token
/// `sha256:<hex>` for a `token_hash`. With --generate-token no input is read: a new random
/// token is made and two lines are printed, the token (give it to the client) and its
/// `token_hash`. Exit status 0, or 1 on an error (empty input, no random source).
///
/// Example: `echo 's3cret' | kairosdb hash-secret`.
#[derive(clap::Args, Debug)]
pub struct HashSecretArgs {
    /// Hash a bearer token (SHA-256) instead of a user password (Argon2id).
    #[arg(long, conflicts_with = "generate_token")]
    pub token: bool,

    /// Make a new random token and print it and its hash.
    #[arg(long)]
    pub generate_token: bool,
}

pub fn run(args: HashSecretArgs) -> u8 {
    match run_inner(&args) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("kairosdb hash-secret: error: {e}");
            1
        }
    }
}

fn run_inner(args: &HashSecretArgs) -> Result<(), String> {
    let mut out = std::io::stdout().lock();
    let mut print = |line: &str| writeln!(out, "{line}").map_err(|e| e.to_string());
    if args.generate_token {
        let token = credentials::generate_token()?;
        print(&token)?;
        return print(&credentials::hash_token(&token));
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| format!("cannot read the secret from stdin: {e}"))?;
    let secret = line.strip_suffix('\n').unwrap_or(&line);
    let secret = secret.strip_suffix('\r').unwrap_or(secret);
    if secret.is_empty() {
        return Err(
            "empty secret; pipe it on stdin, e.g. `echo 's3cret' | kairosdb hash-secret`".into(),
        );
    }
    if args.token {
        print(&credentials::hash_token(secret))
    } else {
        print(&credentials::hash_password(secret)?)
    }
}
