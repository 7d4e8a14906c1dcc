//! `drover completion bash|zsh|fish`: a completion script generated from
//! the CLI definition, on stdout.

use super::Cli;
use clap::CommandFactory;
use clap_complete::Shell;

#[derive(clap::Args, Debug)]
#[command(after_help = "Install, e.g.:\n  \
    drover completion bash > /etc/bash_completion.d/drover\n  \
    drover completion zsh > \"${fpath[1]}/_drover\"\n  \
    drover completion fish > ~/.config/fish/completions/drover.fish")]
pub struct Args {
    #[arg(value_enum)]
    shell: CompletionShell,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum CompletionShell {
    Bash,
    Zsh,
    Fish,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let shell = match args.shell {
        CompletionShell::Bash => Shell::Bash,
        CompletionShell::Zsh => Shell::Zsh,
        CompletionShell::Fish => Shell::Fish,
    };
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "drover", &mut out);
    super::print(&String::from_utf8_lossy(&out))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_name_the_verbs() {
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "drover", &mut out);
            let text = String::from_utf8(out).unwrap();
            assert!(text.contains("daemon-reload"), "{shell}");
        }
    }
}
