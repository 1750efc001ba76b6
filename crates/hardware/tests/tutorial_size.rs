//! The tutorial server example keeps the tutorial's promise: under 100 lines of code.

/// Lines of `examples/tutorial.rs`, without blank lines and comments.
#[test]
fn the_tutorial_example_is_under_100_lines() {
    let text = include_str!("../examples/tutorial.rs");
    let code = text
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with("//"))
        .count();
    assert!(code < 100, "examples/tutorial.rs has {code} lines of code");
}
