%% pharos_beam_ingest: the BEAM doing the daemon's ingest work, for the benchmarks beside it
%% (scripts/ingest-bench.sh). An Erlang node (OTP 27 or later: the json module) that takes
%%
%%   HTTP JSON   POST /v1/metrics, the body of scripts/ingestload (an array of metric objects),
%%               on a plain gen_tcp server with {packet, http_bin}: one process per connection,
%%               keep-alive, the answer {"accepted":N,"refused":[]};
%%   OTLP/JSON   POST /v1/metrics on another port: ExportMetricsServiceRequest in OTLP's JSON
%%               encoding, gauges and sums (one record per data point, attributes as tags);
%%   StatsD      datagrams of lines name:value|c|#k:v,... on a UDP port (counters and gauges);
%%
%% decodes each record with json:decode/1 (or a binary split for StatsD), makes the metric record
%% of docs/wire.md (pharos_json_bench:metric/1 for HTTP) and sends term_to_binary of it to the Brain
%% ({Name, Node} ! Binary: the daemon's payload mode, one message per record). No validation beyond
%% the shapes; the daemon validates more. Measured from outside (its CPU in /proc; the records at
%% the Brain).
%%
%%   erl -name beam_ingest@127.0.0.1 -setcookie C -pa EBIN -noshell -eval \
%%     'pharos_beam_ingest:start(#{brain => {pharos_brain, ''brain@127.0.0.1''}, http => 9280,
%%                                 otlp => 9281, statsd => 9282})'
-module(pharos_beam_ingest).
-export([start/1, statsd_line/2]).

start(#{brain := Brain} = Opts) ->
    maps:foreach(fun(http, Port) -> listen(Port, Brain, fun metrics/2);
                    (otlp, Port) -> listen(Port, Brain, fun otlp/2);
                    (statsd, Port) -> spawn(fun() -> statsd(Port, Brain) end);
                    (_, _) -> ok
                 end, Opts),
    ok.

%% ---------------------------------------------------------------------------------------------
%% HTTP
%% ---------------------------------------------------------------------------------------------

listen(Port, Brain, Handle) ->
    Parent = self(),
    spawn(fun() ->
        {ok, L} = gen_tcp:listen(Port, [binary, {ip, {127, 0, 0, 1}}, {reuseaddr, true}, {active, false},
                                        {backlog, 1024}, {nodelay, true}]),
        Parent ! {listening, Port},
        accept(L, Brain, Handle)
    end),
    receive {listening, Port} -> ok after 5000 -> error(listen_timeout) end.

accept(L, Brain, Handle) ->
    {ok, S} = gen_tcp:accept(L),
    Pid = spawn(fun() -> receive go -> conn(S, Brain, Handle) end end),
    ok = gen_tcp:controlling_process(S, Pid),
    Pid ! go,
    accept(L, Brain, Handle).

conn(S, Brain, Handle) ->
    ok = inet:setopts(S, [{packet, http_bin}]),
    case gen_tcp:recv(S, 0) of
        {ok, {http_request, 'POST', _, _}} ->
            Len = headers(S, 0),
            ok = inet:setopts(S, [{packet, raw}]),
            {ok, Body} = gen_tcp:recv(S, Len),
            N = Handle(Body, Brain),
            Reply = [<<"{\"accepted\":">>, integer_to_binary(N), <<",\"refused\":[]}\n">>],
            ok = gen_tcp:send(S, [<<"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: ">>,
                                  integer_to_binary(iolist_size(Reply)), <<"\r\n\r\n">>, Reply]),
            conn(S, Brain, Handle);
        _ ->
            gen_tcp:close(S)
    end.

headers(S, Len) ->
    case gen_tcp:recv(S, 0) of
        {ok, {http_header, _, 'Content-Length', _, V}} -> headers(S, binary_to_integer(V));
        {ok, {http_header, _, _, _, _}} -> headers(S, Len);
        {ok, http_eoh} -> Len
    end.

send(Brain, Metric) -> erlang:send(Brain, term_to_binary(Metric)).

metrics(Body, Brain) ->
    Records = case json:decode(Body) of L when is_list(L) -> L; M when is_map(M) -> [M] end,
    lists:foldl(fun(M, N) -> send(Brain, pharos_json_bench:metric(M)), N + 1 end, 0, Records).

%% OTLP/JSON: resourceMetrics[].scopeMetrics[].metrics[] with gauge or sum dataPoints.
otlp(Body, Brain) ->
    #{<<"resourceMetrics">> := RMs} = json:decode(Body),
    lists:foldl(fun(RM, N0) ->
        lists:foldl(fun(SM, N1) ->
            lists:foldl(fun(M, N2) -> otlp_metric(M, Brain, N2) end, N1, maps:get(<<"metrics">>, SM, []))
        end, N0, maps:get(<<"scopeMetrics">>, RM, []))
    end, 0, RMs).

otlp_metric(#{<<"name">> := Name} = M, Brain, N) ->
    {Kind, Points} = case M of
                         #{<<"gauge">> := #{<<"dataPoints">> := P}} -> {gauge, P};
                         #{<<"sum">> := #{<<"dataPoints">> := P}} -> {counter, P};
                         _ -> {gauge, []}
                     end,
    lists:foldl(fun(P, K) ->
        Value = case P of
                    #{<<"asDouble">> := D} -> float(D);
                    #{<<"asInt">> := I} when is_binary(I) -> float(binary_to_integer(I));
                    #{<<"asInt">> := I} -> float(I)
                end,
        Tags = [{Key, V} || #{<<"key">> := Key, <<"value">> := #{<<"stringValue">> := V}} <- maps:get(<<"attributes">>, P, [])],
        Ts = case P of
                 #{<<"timeUnixNano">> := T} when is_binary(T) -> binary_to_integer(T) div 1000000;
                 #{<<"timeUnixNano">> := T} -> T div 1000000;
                 _ -> erlang:system_time(millisecond)
             end,
        send(Brain, {metric, Name, Kind, Value, Tags, Ts, <<"otlp">>}),
        K + 1
    end, N, Points).

%% ---------------------------------------------------------------------------------------------
%% StatsD
%% ---------------------------------------------------------------------------------------------

statsd(Port, Brain) ->
    {ok, S} = gen_udp:open(Port, [binary, {ip, {127, 0, 0, 1}}, {active, 100}, {recbuf, 4 bsl 20}]),
    statsd_loop(S, Brain).

statsd_loop(S, Brain) ->
    receive
        {udp, S, _, _, Packet} ->
            Now = erlang:system_time(millisecond),
            [send(Brain, M) || Line <- binary:split(Packet, <<"\n">>, [global]), {ok, M} <- [statsd_line(Line, Now)]],
            statsd_loop(S, Brain);
        {udp_passive, S} ->
            ok = inet:setopts(S, [{active, 100}]),
            statsd_loop(S, Brain)
    end.

%% @doc One StatsD line (name:value|c or |g, optionally |#k:v,...) as a metric record.
statsd_line(Line, Now) ->
    case binary:split(Line, <<"|">>, [global]) of
        [NameValue, Type | Rest] ->
            [Name, V] = binary:split(NameValue, <<":">>),
            Kind = case Type of <<"c">> -> counter; <<"g">> -> gauge; <<"ms">> -> histogram end,
            Tags = lists:append([[list_to_tuple(binary:split(T, <<":">>)) || T <- binary:split(Tg, <<",">>, [global])]
                                 || <<"#", Tg/binary>> <- Rest]),
            {ok, {metric, Name, Kind, number(V), Tags, Now, <<"statsd">>}};
        _ ->
            {error, syntax}
    end.

number(B) ->
    try binary_to_float(B) catch error:badarg -> float(binary_to_integer(B)) end.
