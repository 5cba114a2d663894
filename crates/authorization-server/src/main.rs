fn main() -> std::process::ExitCode {
    common::service::run_main::<authorization_server::AuthorizationServer>()
}
