//! `make demo` shows what it claims: the processor's real figures and a scale-out on the
//! spike followed by a scale-in once traffic falls.

use integration_tests::demo::{self, ProcessorFigures};

#[tokio::test(flavor = "multi_thread")]
async fn the_demo_prints_real_figures_and_scales_out_then_in() {
    let mut printed = Vec::new();
    let report = demo::run(&mut printed).await;
    let printed = String::from_utf8(printed).expect("UTF-8");

    assert!(!printed.contains("null"), "the demo printed a null:\n{printed}");
    // The spike log holds 800 + 800 + 900 + 3,600 + 4,400 requests, the calm one 9 × 300.
    let [spike, calm] = &report.processor[..] else { panic!("two processor runs: {report:?}") };
    for (figures, records) in [(spike, 10_500), (calm, 2_700)] {
        assert_eq!((figures.records, figures.malformed), (records, 0), "{figures:?}");
        assert!(figures.datums_published > 0, "{figures:?}");
        let ProcessorFigures { records, malformed, datums_published } = figures;
        let line = format!("records {records}, malformed {malformed}, datums published {datums_published}");
        assert!(printed.contains(&line), "the demo does not print `{line}`:\n{printed}");
    }

    let desired: Vec<i32> = report.ticks.iter().map(|t| t.desired).collect();
    assert_eq!(report.ticks.len(), 11, "one figure per tick: {:?}", report.ticks);
    let (initial, peak) = (report.ticks[0].current, *desired.iter().max().unwrap());
    let peak_at = desired.iter().position(|&d| d == peak).unwrap();
    assert!(peak > initial, "no scale-out on the spike: {desired:?}");
    assert!(desired[peak_at..].iter().any(|&d| d < peak), "no scale-in after the spike: {desired:?}");
}
