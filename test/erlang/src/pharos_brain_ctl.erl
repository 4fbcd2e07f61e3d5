%% @doc The reference Brain's control port: a line protocol on 127.0.0.1 for the Go test harness,
%% so that it reads statistics without booting another BEAM node per query.
%%
%% Requests, one per line; each answer is one line:
%%   stats              -> the statistics as one JSON object
%%   cluster_stats      -> the cluster's NextSeq per SourceId and per-key accounting (store mnesia)
%%   reset              -> ok
%%   delay MS           -> ok              (every message then costs MS milliseconds)
%%   crash              -> ok              (kills the Brain server; its supervisor restarts it)
%%   exit_reply_to R    -> ok              (the next acked batch's ReplyTo gets exit(ReplyTo, R), once)
%%   eval EXPRS         -> ok TERM | error TERM   (Erlang expressions, evaluated on the Brain node;
%%                                              TERM printed with ~0p on one line)
%%   ping               -> pong
%% At start it prints "PHAROS_BRAIN_READY control_port=PORT node=NODE name=NAME" on stdout for the
%% harness, unless the application env announce is false (`make run`), and writes PORT to
%% control_port_file when that is set.
-module(pharos_brain_ctl).
-export([start_link/3, init/4]).

start_link(Name, Port, PortFile) ->
    proc_lib:start_link(?MODULE, init, [self(), Name, Port, PortFile]).

init(Parent, Name, Port, PortFile) ->
    register(?MODULE, self()),
    {ok, L} = gen_tcp:listen(Port, [binary, {ip, {127, 0, 0, 1}}, {packet, line}, {active, false},
                                    {reuseaddr, true}, {recbuf, 1 bsl 20}, {packet_size, 1 bsl 20}]),
    {ok, Actual} = inet:port(L),
    case PortFile of
        undefined -> ok;
        _ -> ok = file:write_file(PortFile, integer_to_list(Actual))
    end,
    proc_lib:init_ack(Parent, {ok, self()}),
    case application:get_env(pharos_brain, announce, true) of
        false -> ok;
        _ -> io:format("PHAROS_BRAIN_READY control_port=~b node=~s name=~s~n", [Actual, node(), Name])
    end,
    accept(L, Name).

accept(L, Name) ->
    {ok, S} = gen_tcp:accept(L),
    Pid = spawn(fun() -> receive go -> serve(S, Name) end end),
    ok = gen_tcp:controlling_process(S, Pid),
    Pid ! go,
    accept(L, Name).

serve(S, Name) ->
    case gen_tcp:recv(S, 0) of
        {ok, Line} ->
            Reply = try command(string:trim(Line), Name)
                    catch C:E -> io_lib:format("error ~0p", [{C, E}])
                    end,
            ok = gen_tcp:send(S, [Reply, $\n]),
            serve(S, Name);
        {error, _} -> gen_tcp:close(S)
    end.

command(<<"ping">>, _) -> "pong";
command(<<"stats">>, _) -> pharos_brain_json:encode(pharos_brain_store:stats());
command(<<"cluster_stats">>, _) -> pharos_brain_json:encode(pharos_brain_cluster:stats());
command(<<"reset">>, _) ->
    ok = pharos_brain_store:reset(),
    "ok";
command(<<"crash">>, Name) ->
    exit(whereis(Name), kill),
    "ok";
command(<<"exit_reply_to ", Reason/binary>>, _) ->
    persistent_term:put({pharos_brain, exit_reply_to}, binary_to_atom(Reason)),
    "ok";
command(<<"delay ", Ms/binary>>, Name) ->
    ok = pharos_brain:set_delay(Name, binary_to_integer(Ms)),
    "ok";
command(<<"eval ", Src/binary>>, _) ->
    try
        {ok, Tokens, _} = erl_scan:string(binary_to_list(Src)),
        {ok, Exprs} = erl_parse:parse_exprs(Tokens),
        {value, V, _} = erl_eval:exprs(Exprs, erl_eval:new_bindings()),
        io_lib:format("ok ~0p", [V])
    catch C:E -> io_lib:format("error ~0p", [{C, E}])
    end;
command(Other, _) -> io_lib:format("error ~0p", [{unknown_command, Other}]).
