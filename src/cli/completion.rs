//! `drover completion bash|zsh|fish`: a completion script generated from
//! the CLI definition, on stdout.

use super::Cli;
use clap::CommandFactory;
use clap_complete::Shell;

#[derive(clap::Args, Debug)]
#[command(
    after_help = "The Debian package installs all three. By hand, e.g.:\n  \
    drover completion bash > /etc/bash_completion.d/drover\n  \
    drover completion zsh > \"${fpath[1]}/_drover\"\n  \
    drover completion fish > ~/.config/fish/completions/drover.fish"
)]
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

    /// Each script names the verbs and has the shape its shell loads from
    /// the folder the package installs it to (bash-completion's
    /// completions/drover, zsh's vendor-completions/_drover, fish's
    /// vendor_completions.d/drover.fish).
    #[test]
    fn scripts_name_the_verbs_in_each_shells_form() {
        for (shell, marker) in [
            (Shell::Bash, "complete -F _drover"),
            (Shell::Zsh, "#compdef drover"),
            (Shell::Fish, "complete -c drover"),
        ] {
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "drover", &mut out);
            let text = String::from_utf8(out).unwrap();
            assert!(text.contains("daemon-reload"), "{shell}");
            assert!(text.contains(marker), "{shell}: no `{marker}`");
        }
    }
}
