fn main() -> std::process::ExitCode {
    platform_common::service::main(rule_engine::spec())
}
