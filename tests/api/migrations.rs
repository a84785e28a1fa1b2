//! Both migration trees: same names, and every migration runs up, down and up again.

use almanac::db::{migrations, DatabaseUrl, Db};

use crate::backend_tests;
use crate::support::{Backend, TestDb};

#[test]
fn both_trees_hold_the_same_migration_names() {
    let (sqlite, postgres) = migrations::names().expect("migrations are readable");
    assert!(!sqlite.is_empty());
    assert_eq!(sqlite, postgres);
}

backend_tests!(up_down_up);

async fn up_down_up(backend: Backend) {
    let test_db = TestDb::new(backend);
    let db = Db::open(
        &DatabaseUrl::parse(&test_db.url).expect("url"),
        &almanac::config::Config::default().db_options(),
    )
    .expect("open");
    let mut conn = db.get().expect("connection");
    let first = migrations::run_pending(&mut conn).expect("up");
    assert!(!first.is_empty());
    assert!(migrations::run_pending(&mut conn)
        .expect("again")
        .is_empty());
    migrations::revert_all(&mut conn).expect("down");
    let second = migrations::run_pending(&mut conn).expect("up again");
    assert_eq!(first, second);
}
