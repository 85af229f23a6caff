//! Smoke tests against the real servers started by `scripts/services.sh`: each proves the
//! client crate of a backend feature reaches its server. Without the `MCP_TEST_*_URL`
//! variables a developer run skips them; under `CI=true` a missing URL fails.

#[cfg(feature = "redis")]
#[tokio::test]
async fn redis_answers_ping() {
    let Some(url) = mcp_backends::testing::server_url("MCP_TEST_REDIS_URL") else {
        return;
    };
    let client = redis::Client::open(url).expect("valid Redis URL");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("Redis reachable");
    let pong: String = redis::cmd("PING").query_async(&mut conn).await.unwrap();
    assert_eq!(pong, "PONG");
}

#[cfg(feature = "postgres")]
#[tokio::test]
async fn postgres_answers_select_1() {
    let Some(url) = mcp_backends::testing::server_url("MCP_TEST_POSTGRES_URL") else {
        return;
    };
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(&url)
        .await
        .expect("PostgreSQL reachable");
    let (one,): (i32,) = sqlx::query_as("SELECT 1").fetch_one(&pool).await.unwrap();
    assert_eq!(one, 1);
    let (version,): (String,) = sqlx::query_as("SHOW server_version")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(
        version.starts_with("15"),
        "expected PostgreSQL 15, got {version}"
    );
}

#[cfg(feature = "neo4j")]
#[tokio::test]
async fn neo4j_answers_and_has_a_vector_index() {
    let Some(url) = mcp_backends::testing::server_url("MCP_TEST_NEO4J_URL") else {
        return;
    };
    let address = url.trim_start_matches("bolt://");
    let graph = neo4rs::Graph::new(address, "neo4j", "unused-auth-is-off")
        .await
        .expect("Neo4j reachable over Bolt");

    let mut rows = graph.execute(neo4rs::query("RETURN 1 AS n")).await.unwrap();
    let row = rows.next().await.unwrap().expect("one row");
    assert_eq!(row.get::<i64>("n").unwrap(), 1);

    let suffix = mcp_backends::testing::unique_prefix().replace(':', "");
    let index = format!("smoke_vec_{suffix}");
    let label = format!("Smoke{suffix}");
    graph
        .run(neo4rs::query(&format!(
            "CREATE VECTOR INDEX {index} IF NOT EXISTS FOR (n:{label}) ON (n.embedding) \
             OPTIONS {{indexConfig: {{`vector.dimensions`: 3, `vector.similarity_function`: 'cosine'}}}}"
        )))
        .await
        .unwrap();
    graph
        .run(neo4rs::query("CALL db.awaitIndexes(60)"))
        .await
        .unwrap();
    graph
        .run(neo4rs::query(&format!(
            "CREATE (:{label} {{id: 'x', embedding: [1.0, 0.0, 0.0]}}), \
                    (:{label} {{id: 'y', embedding: [0.0, 1.0, 0.0]}})"
        )))
        .await
        .unwrap();
    // The index follows writes asynchronously; poll briefly for the nearest node.
    let mut nearest = None;
    for _ in 0..50 {
        let mut rows = graph
            .execute(
                neo4rs::query(
                    "CALL db.index.vector.queryNodes($index, 1, [0.9, 0.1, 0.0]) \
                     YIELD node, score RETURN node.id AS id, score",
                )
                .param("index", index.as_str()),
            )
            .await
            .unwrap();
        if let Some(row) = rows.next().await.unwrap() {
            nearest = Some((
                row.get::<String>("id").unwrap(),
                row.get::<f64>("score").unwrap(),
            ));
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let (id, score) = nearest.expect("the vector index answered");
    assert_eq!(id, "x");
    assert!(score > 0.9, "cosine score {score}");

    graph
        .run(neo4rs::query(&format!("MATCH (n:{label}) DETACH DELETE n")))
        .await
        .unwrap();
    graph
        .run(neo4rs::query(&format!("DROP INDEX {index} IF EXISTS")))
        .await
        .unwrap();
}
