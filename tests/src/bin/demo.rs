//! `make demo`: the whole product on a local moto server (see `integration_tests::demo`).

#[tokio::main]
async fn main() {
    integration_tests::demo::run(&mut std::io::stdout()).await;
}
