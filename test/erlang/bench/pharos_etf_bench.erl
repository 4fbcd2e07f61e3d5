%% pharos_etf_bench: the BEAM side of the etf benchmarks.
%%
%% Times term_to_binary/1 and binary_to_term/2 with [safe] (what a Brain does with a payload) on the same
%% Metric record the Go benchmarks use (etf/bench_test.go, benchMetric), and prints one "key value" line
%% per result. etf's BenchmarkMetricVsBEAM compiles and runs this module and prints Go/BEAM ratios.
%%
%%   erlc -o /tmp test/erlang/bench/pharos_etf_bench.erl
%%   erl -noshell -pa /tmp -eval 'pharos_etf_bench:main(), halt().'
%%
%% Output (ns per record, the median of Rounds rounds of N records each):
%%   otp_release 27
%%   term_to_binary_ns 560.2
%%   binary_to_term_safe_ns 1290.7
%%   binary_to_term_ns 1201.3
%%   metric_hex 83680777066D6574726963...
-module(pharos_etf_bench).
-export([main/0, main/1, run/2, metric/0, id/1]).

-define(DEFAULT_N, 200000).
-define(DEFAULT_ROUNDS, 7).

%% The benchmark record; the same as benchMetric in etf/bench_test.go.
metric() ->
    {metric, <<"http.server.requests">>, counter, 1234.5,
     [{<<"host">>, <<"web-01">>}, {<<"method">>, <<"GET">>}, {<<"status">>, <<"200">>}],
     1700000000123, <<"pharos-node">>}.

main() -> main([]).

%% main([N, Rounds]) with N and Rounds as strings or integers.
main([N, Rounds]) -> run(to_int(N), to_int(Rounds));
main([N]) -> run(to_int(N), ?DEFAULT_ROUNDS);
main([]) -> run(?DEFAULT_N, ?DEFAULT_ROUNDS).

to_int(X) when is_integer(X) -> X;
to_int(X) when is_atom(X) -> list_to_integer(atom_to_list(X));
to_int(X) when is_list(X) -> list_to_integer(X).

%% An external call the compiler cannot see through, so nothing is folded at compile time.
id(X) -> X.

run(N, Rounds) ->
    M = ?MODULE:id(metric()),
    B = term_to_binary(M),
    M = binary_to_term(B, [safe]),
    T2B = measure(fun() -> t2b_loop(M, N, 0) end, N, Rounds),
    B2TSafe = measure(fun() -> b2t_safe_loop(B, N, 0) end, N, Rounds),
    B2T = measure(fun() -> b2t_loop(B, N, 0) end, N, Rounds),
    io:format("otp_release ~s~n", [erlang:system_info(otp_release)]),
    io:format("records_per_round ~b~n", [N]),
    io:format("term_to_binary_ns ~.1f~n", [T2B]),
    io:format("binary_to_term_safe_ns ~.1f~n", [B2TSafe]),
    io:format("binary_to_term_ns ~.1f~n", [B2T]),
    io:format("metric_hex ~s~n", [binary:encode_hex(B)]),
    ok.

%% The median of Rounds timed rounds, after one untimed warm-up round.
measure(F, N, Rounds) ->
    _ = F(),
    median([time_per_op(F, N) || _ <- lists:seq(1, Rounds)]).

time_per_op(F, N) ->
    garbage_collect(),
    T0 = erlang:monotonic_time(nanosecond),
    _ = F(),
    T1 = erlang:monotonic_time(nanosecond),
    (T1 - T0) / N.

%% Each loop uses every result, so no call can be dropped as dead code.
t2b_loop(_, 0, Acc) -> Acc;
t2b_loop(M, N, Acc) -> t2b_loop(M, N - 1, Acc + byte_size(term_to_binary(M))).

b2t_safe_loop(_, 0, Acc) -> Acc;
b2t_safe_loop(B, N, Acc) -> b2t_safe_loop(B, N - 1, Acc + tuple_size(binary_to_term(B, [safe]))).

b2t_loop(_, 0, Acc) -> Acc;
b2t_loop(B, N, Acc) -> b2t_loop(B, N - 1, Acc + tuple_size(binary_to_term(B))).

median(L) -> lists:nth((length(L) + 1) div 2, lists:sort(L)).
