fn main() -> std::process::ExitCode {
    platform_common::service::main(wallet::spec())
}
