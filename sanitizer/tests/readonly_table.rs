//! doc/rules.md's read-only table is the one the code generates.
#[path = "../examples/readonly-table.rs"]
#[allow(dead_code)] // the example's `main`
mod readonly_table;

#[test]
fn the_docs_show_the_readonly_table_of_the_code() {
    let doc = include_str!("../../doc/rules.md");
    let table = readonly_table::markdown();
    let want = format!("<!-- readonly-table:begin -->\n{table}<!-- readonly-table:end -->");
    assert!(
        doc.contains(&want),
        "doc/rules.md's read-only table differs from sanitizer/src/readonly.rs; regenerate it with \
         `cargo run -p mfiguard-sanitizer --example readonly-table` and paste it between the \
         readonly-table markers:\n{table}"
    );
}
