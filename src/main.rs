fn main() -> std::process::ExitCode {
    tinyserve::cli::main()
}
