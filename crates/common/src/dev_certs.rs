//! The `certs` subcommand of every binary: a development CA and one certificate per service, so
//! that the compose stack speaks TLS on every hop with nothing to set up. `docker compose up` runs
//! it once, as a one-shot service, into a named volume; later runs find the files and keep them.
//!
//! Written into the directory: `ca.pem` (the CA certificate: trust it with `curl --cacert`), and
//! for each service `<service>.pem` (its certificate, then the CA's) and `<service>-key.pem`
//! (mode 0400). Each certificate names the service (its compose host name), `localhost` and
//! `127.0.0.1`, and lasts a year. The CA's private key is never written: nothing can be signed by
//! it once the command ends.

use std::path::Path;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType, IsCa, KeyPair,
    KeyUsagePurpose,
};

/// The services that get a certificate, by compose host name (`redis`: the scaled topology's).
pub const SERVICES: [&str; 4] = ["authorization-server", "resource-server", "webapp", "redis"];

/// What [`ensure`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Created,
    /// Every file was there already: nothing was changed.
    Kept,
}

/// Makes the CA and the certificates in `dir` unless they are all there.
pub fn ensure(dir: &Path) -> Result<Outcome, String> {
    let files: Vec<String> = std::iter::once("ca.pem".to_owned())
        .chain(
            SERVICES
                .iter()
                .flat_map(|service| [format!("{service}.pem"), format!("{service}-key.pem")]),
        )
        .collect();
    let present = files.iter().filter(|file| dir.join(file).exists()).count();
    if present == files.len() {
        return Ok(Outcome::Kept);
    }
    if present > 0 {
        return Err(format!(
            "{} holds {present} of the {} files: remove them to make a new set",
            dir.display(),
            files.len()
        ));
    }
    let ca = certificate_authority()?;
    for service in SERVICES {
        let key = KeyPair::generate().map_err(|err| err.to_string())?;
        let names = vec![
            service.to_owned(),
            "localhost".to_owned(),
            "127.0.0.1".to_owned(),
        ];
        let mut params = CertificateParams::new(names).map_err(|err| err.to_string())?;
        params.distinguished_name = name(service);
        params.not_after = one_year_from_now();
        let certificate = params.signed_by(&key, &ca).map_err(|err| err.to_string())?;
        write(dir, &format!("{service}-key.pem"), &key.serialize_pem())?;
        write(
            dir,
            &format!("{service}.pem"),
            &format!("{}{}", certificate.pem(), ca.pem()),
        )?;
    }
    // Last: its presence says the set is complete.
    write(dir, "ca.pem", &ca.pem())?;
    Ok(Outcome::Created)
}

fn certificate_authority() -> Result<CertifiedIssuer<'static, KeyPair>, String> {
    let mut params = CertificateParams::new(Vec::<String>::new()).map_err(|err| err.to_string())?;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.distinguished_name = name("oauth-time development CA");
    params.not_after = one_year_from_now();
    let key = KeyPair::generate().map_err(|err| err.to_string())?;
    CertifiedIssuer::self_signed(params, key).map_err(|err| err.to_string())
}

fn name(common_name: &str) -> DistinguishedName {
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, common_name);
    name
}

fn one_year_from_now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc() + time::Duration::days(365)
}

/// Written private to its owner (the user the containers run as); certificates are public, but
/// nothing else needs to read them.
fn write(dir: &Path, name: &str, content: &str) -> Result<(), String> {
    let path = dir.join(name);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o400);
    let mut file = options
        .open(&path)
        .map_err(|err| format!("{}: {err}", path.display()))?;
    std::io::Write::write_all(&mut file, content.as_bytes())
        .map_err(|err| format!("{}: {err}", path.display()))
}

#[cfg(test)]
#[cfg(unix)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;
    use crate::tls::{ServerTlsConfig, TlsAcceptor};

    #[test]
    fn a_complete_set_is_made_once_then_kept() {
        let dir = std::env::temp_dir().join(format!("certs-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir(&dir).unwrap();
        assert_eq!(ensure(&dir), Ok(Outcome::Created));
        let ca = std::fs::read(dir.join("ca.pem")).unwrap();
        for service in SERVICES {
            let key = dir.join(format!("{service}-key.pem"));
            let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o400, "{service}");
            // what a service loads at start: the pair matches and the key is private enough
            let config = ServerTlsConfig {
                cert_file: dir.join(format!("{service}.pem")),
                key_file: key,
                reload_every: std::time::Duration::from_secs(5),
            };
            assert!(TlsAcceptor::load(&config).is_ok(), "{service}");
        }
        assert_eq!(ensure(&dir), Ok(Outcome::Kept));
        assert_eq!(
            std::fs::read(dir.join("ca.pem")).unwrap(),
            ca,
            "reused, not remade"
        );

        std::fs::remove_file(dir.join("webapp.pem")).unwrap();
        assert!(ensure(&dir).unwrap_err().contains("remove them"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
