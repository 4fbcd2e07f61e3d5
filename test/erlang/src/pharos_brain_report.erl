%% @doc A compact per-interval summary of what the Brain receives, printed on stdout for operators
%% (`make run`). Started only when the application env report_interval_ms is a positive integer.
-module(pharos_brain_report).
-export([start_link/1, init/2]).

start_link(IntervalMs) -> proc_lib:start_link(?MODULE, init, [self(), IntervalMs]).

init(Parent, IntervalMs) ->
    proc_lib:init_ack(Parent, {ok, self()}),
    loop(IntervalMs, pharos_brain_store:stats(), erlang:monotonic_time(millisecond)).

loop(IntervalMs, Prev, PrevT) ->
    receive after IntervalMs -> ok end,
    S = pharos_brain_store:stats(),
    T = erlang:monotonic_time(millisecond),
    Rate = (maps:get(received, S) - maps:get(received, Prev)) * 1000 div max(1, T - PrevT),
    Sources = maps:keys(maps:merge(maps:get(sources, S), maps:get(no_seq, S))),
    %% In a cluster (pg or peers set), which node says it.
    Who = case application:get_env(pharos_brain, peers, []) of
              [] -> "";
              _ -> [$\s | atom_to_list(node())]
          end,
    io:format("brain~s ~s: ~b records/s | total ~b (metrics ~b, alerts ~b) | invalid ~b | sources ~b~s~n",
              [Who, calendar:system_time_to_rfc3339(erlang:system_time(second)), Rate,
               maps:get(received, S), maps:get(metrics, S), maps:get(alerts, S), maps:get(invalid, S),
               length(Sources), last(pharos_brain_store:last(1))]),
    loop(IntervalMs, S, T).

last([{Type, Name, _, Value, _, _, Source}]) when Type =:= metric ->
    io_lib:format(" | last ~s ~s=~p", [Source, Name, Value]);
last([{alert, Name, Severity, _, _, _, Source}]) ->
    io_lib:format(" | last alert ~s ~s (~s)", [Source, Name, Severity]);
last(_) -> "".
