//! Secrets kept in files: private keys (signing keys, TLS keys) and `*_FILE` settings, as docker
//! secrets mount them.

use std::path::Path;

/// Refuses a private key file that its group or others can read, as ssh does: whoever else can
/// read it can sign tokens or impersonate the service.
pub fn check_private(path: &Path) -> Result<(), String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)
            .map_err(|err| err.to_string())?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            return Err(format!(
                "a private key readable by group or others (mode {:04o}); make it private to \
                 the user the service runs as: chmod 600 {} (0400 in a container)",
                mode & 0o7777,
                path.display()
            ));
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// The content of a secret file without its trailing newline (what `echo secret > file` adds).
pub fn read_secret(path: &Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path).map_err(|err| err.to_string())?;
    let secret = text.strip_suffix('\n').unwrap_or(&text);
    let secret = secret.strip_suffix('\r').unwrap_or(secret);
    if secret.is_empty() {
        return Err("the file is empty".to_owned());
    }
    Ok(secret.to_owned())
}

#[cfg(test)]
#[cfg(unix)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn file(mode: u32, content: &str) -> std::path::PathBuf {
        let path = std::env::temp_dir().join(format!("secret-{}", uuid::Uuid::new_v4()));
        std::fs::write(&path, content).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path
    }

    #[test]
    fn a_key_others_can_read_is_refused_with_the_fix() {
        for mode in [0o644, 0o640, 0o604, 0o660] {
            let path = file(mode, "k");
            let err = check_private(&path).unwrap_err();
            assert!(err.contains(&format!("{mode:04o}")), "{err}");
            assert!(err.contains("chmod 600"), "{err}");
            std::fs::remove_file(path).unwrap();
        }
        for mode in [0o600, 0o400] {
            let path = file(mode, "k");
            assert_eq!(check_private(&path), Ok(()));
            std::fs::remove_file(path).unwrap();
        }
    }

    #[test]
    fn a_secret_file_loses_its_trailing_newline_only() {
        let path = file(0o600, "qwerty\n");
        assert_eq!(read_secret(&path).as_deref(), Ok("qwerty"));
        std::fs::write(&path, " two words \r\n").unwrap();
        assert_eq!(read_secret(&path).as_deref(), Ok(" two words "));
        std::fs::write(&path, "\n").unwrap();
        assert!(read_secret(&path).is_err());
        std::fs::remove_file(path).unwrap();
    }
}
