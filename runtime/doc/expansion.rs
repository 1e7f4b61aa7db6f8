async fn bill(order_id: u64) -> Result<u64, AppError> {
    let __redis_lock_call = ::redis_locked::__private::Call::new(
        ::redis_locked::__private::Options {
            template: "invoice:{order_id}",
            client: ::core::option::Option::None,
            expire: ::core::option::Option::Some(
                ::core::time::Duration::from_nanos(10000000000),
            ),
            auto_renew: ::core::option::Option::Some(true),
            timeout: ::core::option::Option::None,
            max_hold: ::core::option::Option::None,
            min_hold: ::core::option::Option::None,
            permits: 1,
            shared: false,
            abort_on_lost: false,
            reentrant: false,
            fenced: false,
        },
        ::std::format!("invoice:{}", order_id),
    );
    let __redis_lock_guard = match __redis_lock_call.acquire().await {
        ::core::result::Result::Ok(__redis_lock_guard) => __redis_lock_guard,
        ::core::result::Result::Err(__redis_lock_error) => {
            return ::redis_locked::__private::lock_failed(__redis_lock_error);
        }
    };
    let __redis_lock_result = match __redis_lock_call
        .run(
            &__redis_lock_guard,
            async move {
                if false {
                    return ::core::option::Option::<Result<u64, AppError>>::None
                        .unwrap();
                }
                { charge(order_id).await }
            },
        )
        .await
    {
        ::core::result::Result::Ok(__redis_lock_result) => __redis_lock_result,
        ::core::result::Result::Err(__redis_lock_error) => {
            __redis_lock_call.abandon(__redis_lock_guard).await;
            return ::redis_locked::__private::lock_failed(__redis_lock_error);
        }
    };
    __redis_lock_call.finish(__redis_lock_guard).await;
    __redis_lock_result
}

fn bill_blocking(order_id: u64) -> Result<u64, AppError> {
    let __redis_lock_call = ::redis_locked::__private::Call::new(
        ::redis_locked::__private::Options {
            template: "invoice:{order_id}",
            client: ::core::option::Option::None,
            expire: ::core::option::Option::Some(
                ::core::time::Duration::from_nanos(10000000000),
            ),
            auto_renew: ::core::option::Option::Some(true),
            timeout: ::core::option::Option::None,
            max_hold: ::core::option::Option::None,
            min_hold: ::core::option::Option::None,
            permits: 1,
            shared: false,
            abort_on_lost: false,
            reentrant: false,
            fenced: false,
        },
        ::std::format!("invoice:{}", order_id),
    );
    let __redis_lock_guard = match __redis_lock_call.acquire_blocking() {
        ::core::result::Result::Ok(__redis_lock_guard) => __redis_lock_guard,
        ::core::result::Result::Err(__redis_lock_error) => {
            return ::redis_locked::__private::lock_failed(__redis_lock_error);
        }
    };
    let __redis_lock_entered = __redis_lock_call.enter(&__redis_lock_guard);
    { charge_blocking(order_id) }
}
