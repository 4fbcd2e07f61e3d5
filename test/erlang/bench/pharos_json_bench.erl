%% pharos_json_bench: the BEAM side of ingest's BenchmarkJSONVersusBEAM.
%%
%% Decodes a JSON request body of metrics (the file Go writes: the same bytes its benchmark decodes)
%% with OTP 27's json module, makes each object the metric record a Brain receives, and encodes it
%% with term_to_binary/1: the work of an Erlang node taking the body over HTTP and sending the
%% records on, without the HTTP and the socket (which Go's side leaves out too).
%%
%%   erlc -o /tmp test/erlang/bench/pharos_json_bench.erl
%%   erl +sbwt none -noshell -pa /tmp -eval 'pharos_json_bench:main(["body.json", "100", "7"]), halt().'
%%
%% Output, per record, the median of Rounds rounds of about 100,000 records, after a warm-up round:
%%   otp_release 27
%%   records_per_body 100
%%   wall_ns 2650.1        wall time per record (one process)
%%   cpu_ns 2700.0         CPU time of the whole VM per record (utime + stime, /proc/self/stat)
%%   records_hex ...       the first record, term_to_binary'd: Go checks it decodes to its own
-module(pharos_json_bench).
-export([main/1, run/3, metric/1]).

-define(RECORDS_PER_ROUND, 100000).

main([File, PerBody, Rounds]) -> run(File, to_int(PerBody), to_int(Rounds)).

to_int(X) when is_integer(X) -> X;
to_int(X) when is_atom(X) -> list_to_integer(atom_to_list(X));
to_int(X) when is_list(X) -> list_to_integer(X).

run(File, PerBody, Rounds) ->
    {ok, Body} = file:read_file(File),
    PerBody = length(records(json:decode(Body))),
    Iter = max(1, ?RECORDS_PER_ROUND div PerBody),
    N = Iter * PerBody,
    F = fun() -> loop(Body, Iter, 0) end,
    _ = F(),
    Results = [round_ns(F, N) || _ <- lists:seq(1, Rounds)],
    {Wall, Cpu} = lists:unzip(Results),
    [First | _] = records(json:decode(Body)),
    io:format("otp_release ~s~n", [erlang:system_info(otp_release)]),
    io:format("records_per_body ~b~n", [PerBody]),
    io:format("wall_ns ~.1f~n", [median(Wall)]),
    io:format("cpu_ns ~.1f~n", [median(Cpu)]),
    io:format("records_hex ~s~n", [binary:encode_hex(term_to_binary(metric(First)))]),
    ok.

round_ns(F, N) ->
    garbage_collect(),
    C0 = cpu_ticks(),
    T0 = erlang:monotonic_time(nanosecond),
    _ = F(),
    T1 = erlang:monotonic_time(nanosecond),
    C1 = cpu_ticks(),
    {(T1 - T0) / N, (C1 - C0) * 10000000 / N}. % ticks of 10 ms

%% utime + stime of this OS process, in USER_HZ (100) ticks.
cpu_ticks() ->
    {ok, Stat} = file:read_file("/proc/self/stat"),
    [_, Rest] = string:split(Stat, <<") ">>, trailing),
    F = string:split(Rest, <<" ">>, all),
    binary_to_integer(lists:nth(12, F)) + binary_to_integer(lists:nth(13, F)).

loop(_, 0, Acc) -> Acc;
loop(Body, N, Acc) ->
    Size = lists:foldl(fun(M, A) -> A + byte_size(term_to_binary(metric(M))) end, 0, records(json:decode(Body))),
    loop(Body, N - 1, Acc + Size).

records(L) when is_list(L) -> L;
records(M) when is_map(M) -> [M].

%% The metric record of WIRE.md from a decoded object: kind as an atom, value as a float, tags as
%% {Key, Value} pairs (an object's in key order: json:decode/1 gives a map), defaults as Go's.
metric(#{<<"name">> := Name, <<"kind">> := Kind, <<"value">> := Value} = M) when is_binary(Name), is_number(Value) ->
    Tags = case maps:get(<<"tags">>, M, null) of
               null -> [];
               T when is_map(T) -> maps:to_list(T);
               T when is_list(T) -> [{K, V} || [K, V] <- T, is_binary(K), is_binary(V)]
           end,
    Ts = case maps:get(<<"timestamp_ms">>, M, null) of
             null -> erlang:system_time(millisecond);
             I when is_integer(I) -> I
         end,
    Source = case maps:get(<<"source">>, M, null) of null -> <<"http">>; S when is_binary(S) -> S end,
    {metric, Name, kind(Kind), float(Value), Tags, Ts, Source}.

kind(<<"counter">>) -> counter;
kind(<<"gauge">>) -> gauge;
kind(<<"histogram">>) -> histogram.

median(L) -> lists:nth((length(L) + 1) div 2, lists:sort(L)).
