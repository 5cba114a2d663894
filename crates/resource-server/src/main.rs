fn main() -> std::process::ExitCode {
    common::service::run_main::<resource_server::ResourceServer>()
}
