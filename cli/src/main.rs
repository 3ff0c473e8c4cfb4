fn main() -> std::process::ExitCode {
    finctl::main()
}
