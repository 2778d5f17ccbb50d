// Placeholder until the labels bench is written.
fn main() {}
