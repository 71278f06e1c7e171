//! The bus contract (`tests/contract`) on the in-process backend.

mod contract;

use haetae_bus::Bus;

#[tokio::test]
async fn a_published_policy_is_the_latest() {
    contract::a_published_policy_is_the_latest(Bus::in_process()).await;
}

#[tokio::test]
async fn a_version_not_greater_than_the_current_is_refused() {
    contract::a_version_not_greater_than_the_current_is_refused(Bus::in_process()).await;
}

#[tokio::test]
async fn an_invalid_policy_is_refused_with_its_problems() {
    contract::an_invalid_policy_is_refused_with_its_problems(Bus::in_process()).await;
}

#[tokio::test]
async fn a_watch_starts_with_the_latest_then_gets_each_newer() {
    contract::a_watch_starts_with_the_latest_then_gets_each_newer(Bus::in_process()).await;
}

#[tokio::test]
async fn a_watch_before_any_publish_waits_for_the_first() {
    contract::a_watch_before_any_publish_waits_for_the_first(Bus::in_process()).await;
}

#[tokio::test]
async fn emitted_events_reach_a_subscriber_in_order() {
    contract::emitted_events_reach_a_subscriber_in_order(Bus::in_process(), "center").await;
}

#[tokio::test]
async fn an_unacknowledged_batch_is_delivered_again() {
    contract::an_unacknowledged_batch_is_delivered_again(Bus::in_process(), "center").await;
}

#[tokio::test]
async fn an_event_sent_twice_is_delivered_once() {
    contract::an_event_sent_twice_is_delivered_once(Bus::in_process(), "center").await;
}

#[tokio::test]
async fn each_durable_subscriber_gets_every_event() {
    contract::each_durable_subscriber_gets_every_event(Bus::in_process(), "center_a", "center_b")
        .await;
}

#[tokio::test]
async fn create_refuses_a_present_key() {
    contract::create_refuses_a_present_key(Bus::in_process(), "b").await;
}

#[tokio::test]
async fn compare_and_swap_wins_only_at_the_expected_revision() {
    contract::compare_and_swap_wins_only_at_the_expected_revision(Bus::in_process(), "b").await;
}

#[tokio::test]
async fn compare_and_swap_on_an_absent_key_fails() {
    contract::compare_and_swap_on_an_absent_key_fails(Bus::in_process(), "b").await;
}

#[tokio::test]
async fn an_entry_is_absent_once_its_ttl_passed() {
    contract::an_entry_is_absent_once_its_ttl_passed(Bus::in_process(), "b").await;
}

#[tokio::test]
async fn an_expired_key_can_be_created_again_but_not_swapped() {
    contract::an_expired_key_can_be_created_again_but_not_swapped(Bus::in_process(), "b").await;
}

#[tokio::test]
async fn a_ttl_beyond_the_bucket_max_age_is_refused() {
    contract::a_ttl_beyond_the_bucket_max_age_is_refused(Bus::in_process(), "b").await;
}

#[tokio::test]
async fn a_deleted_key_is_absent_and_can_be_created() {
    contract::a_deleted_key_is_absent_and_can_be_created(Bus::in_process(), "b").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_increments_are_never_lost() {
    contract::concurrent_increments_are_never_lost(Bus::in_process(), "b").await;
}

#[tokio::test]
async fn an_increment_keeps_the_window_of_the_first() {
    contract::an_increment_keeps_the_window_of_the_first(Bus::in_process(), "b").await;
}

#[tokio::test]
async fn buckets_do_not_share_keys() {
    contract::buckets_do_not_share_keys(Bus::in_process(), "b1", "b2").await;
}

#[tokio::test]
async fn a_watch_outlives_the_bus_handle_it_came_from() {
    let bus = Bus::in_process();
    contract::a_watch_outlives_the_bus_handle_it_came_from(bus.clone(), bus).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_publishers_never_make_the_version_go_back() {
    let bus = Bus::in_process();
    contract::concurrent_publishers_never_make_the_version_go_back(bus.clone(), bus.clone(), bus)
        .await;
}
