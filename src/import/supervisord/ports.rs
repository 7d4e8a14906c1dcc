//! `%(process_num)` in a port: `--port=80%(process_num)02d` with
//! `numprocs=3` runs processes on 8000, 8001 and 8002. drover's replicas
//! are identical, but each pod can get its own port from a range: when
//! the processes' commands differ in exactly one argument, which ends in
//! consecutive unprivileged port numbers, that argument becomes
//! `PREFIX${PORT_PORT}` and the numbers a port range.

use crate::api::PortRange;

/// The argument that holds each process's port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortArgument {
    /// Its index in the argv.
    pub index: usize,
    /// What comes before the number (`--port=`, `127.0.0.1:`).
    pub prefix: String,
    pub range: PortRange,
}

/// The port argument of the processes' argvs (one per process, in
/// process_num order), if they differ in a port and nothing else.
pub fn port_argument(argvs: &[Vec<String>]) -> Option<PortArgument> {
    let first = &argvs[0];
    if argvs.iter().any(|a| a.len() != first.len()) {
        return None;
    }
    let differing: Vec<usize> = (0..first.len())
        .filter(|i| argvs.iter().any(|a| a[*i] != first[*i]))
        .collect();
    let [index] = differing[..] else { return None };
    let words: Vec<&str> = argvs.iter().map(|a| a[index].as_str()).collect();
    // The number ends the argument; the digits of the common prefix
    // belong to it ("80" of "8000", "8001").
    let mut p = common_prefix(&words);
    while p > 0 && words[0].as_bytes()[p - 1].is_ascii_digit() {
        p -= 1;
    }
    let mut numbers = Vec::new();
    for w in &words {
        let digits = &w[p..];
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        numbers.push(digits.parse::<u32>().ok()?);
    }
    let consecutive = numbers.windows(2).all(|w| w[1] == w[0] + 1);
    let first_port = u16::try_from(numbers[0]).ok()?;
    let last_port = u16::try_from(*numbers.last()?).ok()?;
    // Processes numbered 0, 1, 2 in a path, or ports below 1024, are not
    // what this is for.
    if !consecutive || first_port < 1024 {
        return None;
    }
    Some(PortArgument {
        index,
        prefix: words[0][..p].to_string(),
        range: PortRange {
            first: first_port,
            last: last_port,
        },
    })
}

fn common_prefix(words: &[&str]) -> usize {
    let first = words[0].as_bytes();
    let mut n = first.len();
    for w in &words[1..] {
        let same = first
            .iter()
            .zip(w.as_bytes())
            .take_while(|(a, b)| a == b)
            .count();
        n = n.min(same);
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argvs(words: &[&str]) -> Vec<Vec<String>> {
        words
            .iter()
            .map(|w| vec!["app".to_string(), w.to_string(), "-v".to_string()])
            .collect()
    }

    /// (index, prefix, range) of the port argument.
    type Found<'a> = Option<(usize, &'a str, &'a str)>;

    fn found(words: &[&str]) -> Option<(usize, String, String)> {
        port_argument(&argvs(words)).map(|a| (a.index, a.prefix, String::from(a.range)))
    }

    #[test]
    fn a_process_number_in_a_port_becomes_a_port_range() {
        let cases: &[(&[&str], Found)] = &[
            (
                &["--port=8000", "--port=8001", "--port=8002"],
                Some((1, "--port=", "8000-8002")),
            ),
            (
                &["127.0.0.1:9010", "127.0.0.1:9011"],
                Some((1, "127.0.0.1:", "9010-9011")),
            ),
            (&["9998", "9999", "10000"], Some((1, "", "9998-10000"))),
            // Not a port: in a path, privileged, not numbers, not
            // consecutive, too large.
            (&["/tmp/a-1024.sock", "/tmp/a-1025.sock"], None),
            (&["80", "81"], None),
            (&["worker-a", "worker-b"], None),
            (&["8000", "8002"], None),
            (&["70000", "70001"], None),
        ];
        for (words, want) in cases {
            let want = want.map(|(i, p, r)| (i, p.to_string(), r.to_string()));
            assert_eq!(found(words), want, "{words:?}");
        }
    }

    #[test]
    fn two_differing_arguments_are_not_a_port() {
        let argvs = vec![
            vec!["app".to_string(), "8000".to_string(), "a".to_string()],
            vec!["app".to_string(), "8001".to_string(), "b".to_string()],
        ];
        assert_eq!(port_argument(&argvs), None);
    }
}
