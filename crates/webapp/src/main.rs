fn main() -> std::process::ExitCode {
    common::service::run_main::<webapp::Webapp>()
}
