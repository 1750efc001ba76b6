//! Tells the binary what it was built for and from, for `janitoo --version`: the target triple
//! and the commit (`$JANITOO_COMMIT` when set, as a package build may; else git's; else
//! "unknown").

use std::path::Path;
use std::process::Command;

fn git(arguments: &[&str]) -> Option<String> {
    let output = Command::new("git").args(arguments).output().ok()?;
    let text = String::from_utf8(output.stdout).ok()?;
    (output.status.success() && !text.trim().is_empty()).then(|| text.trim().to_owned())
}

fn main() {
    let target = std::env::var("TARGET").unwrap_or_else(|_| "unknown".into());
    println!("cargo:rustc-env=JANITOO_TARGET={target}");
    println!("cargo:rerun-if-env-changed=JANITOO_COMMIT");
    let commit = std::env::var("JANITOO_COMMIT")
        .ok()
        .filter(|commit| !commit.trim().is_empty())
        .or_else(|| git(&["rev-parse", "--short=12", "HEAD"]))
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=JANITOO_COMMIT={commit}");
    // Built again when the checkout moves to another commit.
    if let Some(git_dir) = git(&["rev-parse", "--absolute-git-dir"]) {
        let head = Path::new(&git_dir).join("HEAD");
        let branch =
            git(&["symbolic-ref", "-q", "HEAD"]).map(|name| Path::new(&git_dir).join(name));
        for path in [
            Some(head),
            branch,
            Some(Path::new(&git_dir).join("packed-refs")),
        ]
        .into_iter()
        .flatten()
        .filter(|path| path.exists())
        {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }
}
