%% @doc Checks of the reference Brain that need no node of their own: run/0 prints "ok" and halts
%% the node with status 0, or prints the first failure and halts with status 1.
%% internal/erltest (TestBrainChecks) compiles this module with each release's erlc and runs it.
%%
%%   validate: pharos_brain_wire:validate/1 and decode/1 give, for thousands of generated records
%%     (valid ones, and ones broken in each field: non-UTF-8, overlong, surrogate and out-of-range
%%     bytes in every text, duplicate and malformed tags, wrong types), exactly what the original
%%     implementation (ref_validate/1 below, kept verbatim) gives.
%%   acked: pharos_brain_store:acked_batch/1, which sums a batch up in the caller and applies it in
%%     one call, leaves the same statistics and last records as counting each new payload alone
%%     with record/2 and invalid/2, over batches with resends, gaps, reorders, several sources,
%%     alerts, records without a seq tag and invalid payloads.
%%   stores: pharos_acked:commit_batch/5 with the local store (pharos_acked_local) and the mnesia
%%     store (pharos_acked_mnesia, on this node alone) acknowledges and applies exactly what
%%     fold_batch/4 over a map does, over the same batches; a commit against a NextSeq that moved
%%     is stale and applies nothing.
-module(pharos_brain_check).
-export([run/0, validate/0, acked/0, stores/0]).

run() ->
    try
        ok = validate(),
        ok = acked(),
        ok = stores(),
        io:format("ok~n"),
        erlang:halt(0)
    catch C:E:S ->
        io:format("FAIL ~p:~p~n~p~n", [C, E, S]),
        erlang:halt(1)
    end.

%%% validate/1 against the original implementation

validate() ->
    {module, _} = code:ensure_loaded(pharos_brain_wire),
    rand:seed(exsss, {1, 2, 3}),
    Recs = fixed() ++ [random_record() || _ <- lists:seq(1, 20000)],
    N = length([same(R) || R <- Recs]),
    io:format("validate: ~b records~n", [N]),
    %% validate/2 after a valid record: the same answer as validate/1 for the record itself,
    %% for that record with each field in turn replaced by a random (often broken) one, and
    %% with one tag's key or value replaced.
    Valid = [R || R <- Recs, pharos_brain_wire:validate(R) =:= ok],
    Pairs = [{Prev, Rec} || Prev <- lists:sublist(Valid, 4000), Rec <- [Prev | variants(Prev)]]
        ++ [{Prev, Rec} || {Prev, Rec} <- lists:zip(lists:droplast(Recs), tl(Recs)),
                           pharos_brain_wire:validate(Prev) =:= ok],
    Like = length([same_after(Prev, Rec) || {Prev, Rec} <- Pairs]),
    io:format("validate/2: ~b pairs~n", [Like]),
    ok.

same_after(Prev, Rec) ->
    Want = pharos_brain_wire:validate(Rec),
    case pharos_brain_wire:validate(Rec, Prev) of
        Want -> ok;
        Got -> error({validate_after, Prev, Rec, {want, Want}, {got, Got}})
    end.

variants(Prev) ->
    Other = random_record(),
    Tags = element(5, Prev),
    [setelement(P, Prev, element(P, Other)) || P <- lists:seq(1, 7)]
        ++ [setelement(5, Prev, replace_tag(Tags, I, Which))
            || I <- lists:seq(1, length(Tags)), Which <- [key, value, both]].

replace_tag(Tags, I, Which) ->
    {K, V} = lists:nth(I, Tags),
    New = pick([<<"other">>, <<"é"/utf8>> | bad_texts()] ++ [element(1, T) || T <- Tags]),
    Tag = case Which of key -> {New, V}; value -> {K, New}; both -> {New, New} end,
    lists:sublist(Tags, I - 1) ++ [Tag | lists:nthtail(I, Tags)].

same(Rec) ->
    Want = ref(Rec),
    case pharos_brain_wire:validate(Rec) of
        Want -> ok;
        Got -> error({validate, Rec, {want, Want}, {got, Got}})
    end,
    %% and through the payload path, where the term went through term_to_binary
    Bin = term_to_binary(Rec),
    WantDecode = case Want of ok -> {ok, Rec}; E -> E end,
    case pharos_brain_wire:decode(Bin) of
        WantDecode -> ok;
        GotDecode -> error({decode, Rec, {want, WantDecode}, {got, GotDecode}})
    end.

%% The original validation raises on an improper tag list whose proper part is valid (it crashed
%% the Brain); the new one reports it as {bad, tags}, as it does any other tag list that is not a
%% proper list of text pairs, in the usual order of fields.
ref(Rec) ->
    try ref_validate(Rec)
    catch error:_ -> ref_validate(setelement(5, Rec, improper))
    end.

fixed() ->
    M = {metric, <<"cpu">>, gauge, 1.0, [], 1, <<"s">>},
    A = {alert, <<"disk">>, critical, <<"full">>, [], 1, <<"s">>},
    [M, A, setelement(2, M, <<>>), setelement(2, A, <<>>), {metric}, {alert, 1}, foo, <<"x">>, [],
     setelement(1, M, alert), setelement(1, A, metric), erlang:append_element(M, x),
     setelement(5, M, [{<<"k">>, <<"v">>} | improper]), setelement(5, M, [bad | improper]),
     setelement(5, setelement(2, M, x), [{<<"k">>, <<"v">>} | improper]),
     setelement(5, M, [{<<"k">>, <<"v">>}, {<<"k">>, <<"w">>}]),
     setelement(5, M, [{<<"a">>, <<"v">>}, {<<"b">>, <<"v">>}, {<<"a">>, <<"v">>}]),
     setelement(5, M, [{<<"a">>, <<"v">>}, {<<"b">>, <<"v">>}, {<<"b">>, <<"v">>}]),
     setelement(5, M, [{<<"a">>, <<"v">>}, {<<"b">>, <<"v">>}, {<<"c">>, <<"v">>}, {<<"a">>, <<"v">>}]),
     setelement(5, M, [{<<"k">>, <<"v">>, x}]), setelement(5, M, [{<<"k">>}]), setelement(5, M, [{k, <<"v">>}]),
     setelement(4, M, 1), setelement(6, M, 1.0), setelement(6, M, 1 bsl 80), setelement(7, M, s)]
        ++ [setelement(P, R, T) || R <- [M, A], P <- [2, 7], T <- bad_texts() ++ good_texts()]
        ++ [setelement(4, A, T) || T <- bad_texts() ++ good_texts()]
        ++ [setelement(5, R, [{K, V}]) || R <- [M, A], K <- bad_texts() ++ good_texts(),
                                            V <- [<<"v">> | bad_texts()]].

good_texts() ->
    [<<>>, <<"a">>, <<"abcdefg">>, <<"abcdefgh">>, <<"abcdefghi">>, <<"0123456789abcdef!">>,
     <<"é"/utf8>>, <<"aaaé"/utf8>>, <<"aaaaaaaé"/utf8>>, <<"€uro"/utf8>>, <<"𝄞clef"/utf8>>,
     <<16#7F, 16#7F, 16#7F, 16#7F, 16#7F>>, <<16#10FFFF/utf8>>, <<16#D7FF/utf8, 16#E000/utf8>>].

bad_texts() ->
    [x, 1, "list", {<<"t">>}, <<128>>, <<"aaaa", 128>>, <<"aaaaaaa", 255>>, <<"aaaaaaaa", 16#C0, 16#80>>,
     <<16#C0, 16#AF>>, <<16#E0, 16#80, 16#AF>>, <<16#F0, 16#80, 16#80, 16#AF>>,  % overlong
     <<16#ED, 16#A0, 16#80>>, <<"abcd", 16#ED, 16#BF, 16#BF>>,                   % surrogates
     <<16#F4, 16#90, 16#80, 16#80>>, <<16#F8, 16#88, 16#80, 16#80, 16#80>>,        % above 16#10FFFF
     <<16#E2, 16#82>>, <<"abc", 16#E2>>, <<16#80, "abcdefgh">>,                   % truncated, stray
     <<"abc", 0:1>>].                                                             % not whole bytes

%% A record that is valid, or broken in one or more fields at random.
random_record() ->
    Type = pick([metric, alert]),
    Name = field(fun() -> text(1) end, [<<>> | bad_texts()]),
    Second = case Type of
                 metric -> field(fun() -> pick([counter, gauge, histogram]) end, [info, bogus, <<"gauge">>, 1]);
                 alert -> field(fun() -> pick([info, warning, critical]) end, [gauge, bogus, <<"info">>, 1])
             end,
    Third = case Type of
                metric -> field(fun() -> rand:uniform() * 1000 end, [1, nil, <<"1.0">>]);
                alert -> field(fun() -> text(0) end, bad_texts())
            end,
    Tags = field(fun() -> tags() end, [x, <<"tags">>, {tags}, bad_tags(), bad_tags(), bad_tags()]),
    Ts = field(fun() -> rand:uniform(1 bsl 45) end, [1.5, <<"1">>, x, -1.0]),
    Source = field(fun() -> text(0) end, bad_texts()),
    {Type, Name, Second, Third, Tags, Ts, Source}.

field(Good, Bads) ->
    case rand:uniform(8) of
        1 -> pick(Bads);
        _ -> Good()
    end.

%% 0 to 5 tags with distinct keys, sometimes a seq tag among them.
tags() ->
    Keys = lists:usort([text(1) || _ <- lists:seq(1, rand:uniform(6) - 1)]),
    Tags = [{K, text(0)} || K <- shuffle(Keys)],
    case rand:uniform(3) of
        1 -> Tags ++ [{<<"seq">>, integer_to_binary(rand:uniform(1000))}];
        _ -> Tags
    end.

bad_tags() ->
    Good = tags(),
    case rand:uniform(6) of
        1 when Good =/= [] -> Good ++ [hd(Good)];                            % a duplicate key
        2 when Good =/= [] -> [{element(1, hd(Good)), <<"other">>} | Good];  % a duplicate key, other value
        3 -> Good ++ [{pick(bad_texts()), <<"v">>}];
        4 -> Good ++ [{<<"k">>, pick(bad_texts())}];
        5 -> Good ++ [pick([{<<"k">>}, {<<"k">>, <<"v">>, <<"w">>}, <<"k">>, k, [<<"k">>, <<"v">>]])];
        _ -> [{pick(bad_texts()), pick(bad_texts())} | Good]
    end.

%% A valid text of at least Min characters: ASCII mostly, sometimes multi-byte characters.
text(Min) ->
    Len = Min + rand:uniform(20) - 1,
    unicode:characters_to_binary([char() || _ <- lists:seq(1, Len)]).

char() ->
    case rand:uniform(10) of
        1 -> pick([16#E9, 16#20AC, 16#1D11E, 16#7F, 16#80, 16#7FF, 16#800, 16#D7FF, 16#E000, 16#FFFF, 16#10000, 16#10FFFF]);
        _ -> $a + rand:uniform(26) - 1
    end.

pick(L) -> lists:nth(rand:uniform(length(L)), L).

shuffle(L) -> [X || {_, X} <- lists:sort([{rand:uniform(), X} || X <- L])].

%% The original pharos_brain_wire:validate/1, verbatim: the reference the new one must match.
ref_validate({metric, Name, Kind, Value, Tags, Ts, Source}) ->
    ref_check([{name, ref_is_text(Name) andalso Name =/= <<>>},
               {kind, lists:member(Kind, [counter, gauge, histogram])},
               {value, is_float(Value)},
               {tags, ref_valid_tags(Tags)},
               {timestamp_ms, is_integer(Ts)},
               {source, ref_is_text(Source)}]);
ref_validate({alert, Name, Severity, Message, Tags, Ts, Source}) ->
    ref_check([{name, ref_is_text(Name) andalso Name =/= <<>>},
               {severity, lists:member(Severity, [info, warning, critical])},
               {message, ref_is_text(Message)},
               {tags, ref_valid_tags(Tags)},
               {timestamp_ms, is_integer(Ts)},
               {source, ref_is_text(Source)}]);
ref_validate(_) -> {error, not_a_record}.

ref_check([]) -> ok;
ref_check([{_, true} | Rest]) -> ref_check(Rest);
ref_check([{Field, false} | _]) -> {error, {bad, Field}}.

ref_is_text(B) when is_binary(B) -> ref_is_utf8(B);
ref_is_text(_) -> false.

ref_is_utf8(<<C, R/binary>>) when C < 128 -> ref_is_utf8(R);
ref_is_utf8(<<_/utf8, R/binary>>) -> ref_is_utf8(R);
ref_is_utf8(<<>>) -> true;
ref_is_utf8(_) -> false.

ref_valid_tags(Tags) when is_list(Tags) ->
    lists:all(fun({K, V}) -> ref_is_text(K) andalso ref_is_text(V); (_) -> false end, Tags)
        andalso length(lists:usort([K || {K, _} <- Tags])) =:= length(Tags);
ref_valid_tags(_) -> false.

%%% acked batches against counting record by record

acked() ->
    {module, _} = code:ensure_loaded(pharos_brain_wire),
    process_flag(trap_exit, true),
    {ok, Store} = pharos_brain_store:start_link(undefined),
    rand:seed(exsss, {4, 5, 6}),
    Script = script(),
    ok = pharos_brain_store:reset(),
    Acks = [begin
                {ok, {Self, Ack}} = pharos_brain_store:acked_batch(B),
                Self = self(),
                Ack
            end || B <- Script],
    Batched = {pharos_brain_store:stats(), pharos_brain_store:last(100)},
    ok = pharos_brain_store:reset(),
    Acks = [one_by_one(B) || B <- Script],
    OneByOne = {pharos_brain_store:stats(), pharos_brain_store:last(100)},
    case Batched =:= OneByOne of
        true -> ok;
        false -> error({acked, {batched, Batched}, {one_by_one, OneByOne}})
    end,
    %% a summary computed against a NextSeq that has changed since is not applied (the store
    %% answers stale and acked_batch/1 starts over): here NextSeq of <<"sid-a">> is 1500, not 5
    stale = gen_server:call(pharos_brain_store, {acked_batch, <<"sid-a">>, 5, 10, not_applied}),
    OneByOne = {pharos_brain_store:stats(), pharos_brain_store:last(100)},
    unlink(Store),
    exit(Store, kill),
    io:format("acked: ~b batches, ~b records counted~n",
              [length(Script), maps:get(received, element(1, Batched))]),
    ok.

%% What acked_batch/1 must amount to: pharos_acked's choice of new payloads, each counted alone.
one_by_one({pharos_batch, ReplyTo, SourceId, _, _} = Batch) ->
    State = pharos_brain_store:acked_state(),
    Fun = fun(Bin, Acc) ->
                  case pharos_brain_wire:decode(Bin) of
                      {ok, Rec} -> pharos_brain_store:record(acked, Rec);
                      {error, Reason} -> pharos_brain_store:invalid(acked, Reason)
                  end,
                  Acc
          end,
    {ok, State1, {ReplyTo, Ack}, nil} = pharos_acked:fold_batch(Batch, State, Fun, nil),
    pharos_brain_store:set_acked_state(State1),
    {pharos_ack, SourceId, _} = Ack.

%% Batches of two sender instances: in order, resent after a lost ack, beyond NextSeq (a gap),
%% holding several sources, reordered and duplicated seq tags, alerts, records without a seq
%% tag, invalid payloads, and more than 100 records (the last records kept).
script() ->
    lists:append([sender(<<"sid-a">>), sender(<<"sid-b">>)]).

sender(Sid) ->
    Payloads = [payload(Sid, I) || I <- lists:seq(0, 1499)],
    batches(Sid, Payloads, 0, []).

batches(_Sid, [], _Seq, Acc) -> lists:reverse(Acc);
batches(Sid, Payloads, Seq, Acc) ->
    N = min(length(Payloads), rand:uniform(250)),
    {Batch, Rest} = lists:split(N, Payloads),
    B = {pharos_batch, self(), Sid, Seq, Batch},
    Extra = case rand:uniform(6) of
                1 when Seq >= 10 ->  % a resend overlapping what was acknowledged
                    Back = rand:uniform(10),
                    [{pharos_batch, self(), Sid, Seq - Back, lists:duplicate(Back, hd(Batch)) ++ Batch}];
                2 ->                 % a batch beyond NextSeq: not processed
                    [{pharos_batch, self(), Sid, Seq + N + 3, Batch}];
                _ -> []
            end,
    batches(Sid, Rest, Seq + N, Extra ++ [B | Acc]).

payload(Sid, I) ->
    Source = pick([Sid, <<Sid/binary, "-other">>, <<"shared">>]),
    Seq = case rand:uniform(10) of
              1 -> I + 5;             % ahead: a reorder later
              2 -> max(0, I - 3);     % behind: a duplicate or a reorder
              _ -> I
          end,
    Tags = case rand:uniform(12) of
               1 -> [{<<"host">>, <<"h">>}];  % no seq tag
               2 -> [{<<"seq">>, <<"notanumber">>}];
               _ -> [{<<"host">>, <<"h">>}, {<<"seq">>, integer_to_binary(Seq)}]
           end,
    case rand:uniform(30) of
        1 -> <<131, 200, 1>>;                                           % bad_etf
        2 -> term_to_binary({metric, <<>>, gauge, 1.0, Tags, 1, Source}); % bad name
        3 -> term_to_binary({hello, Sid});                              % not_a_record
        4 -> term_to_binary({alert, <<"disk">>, critical, <<"full">>, Tags, I, Source});
        _ -> term_to_binary({metric, <<"cpu">>, gauge, float(I), Tags, 1700000000000 + I, Source})
    end.

%%% the store behaviour

stores() ->
    rand:seed(exsss, {7, 8, 9}),
    Script = script(),
    Want = by_map(Script),
    Want = by_store(Script, pharos_acked:new(pharos_acked_local, [])),
    Dir = filename:join(os:getenv("PHAROS_CHECK_TMP", "/tmp"), "pharos_check_mnesia_" ++ os:getpid()),
    ok = application:set_env(mnesia, dir, Dir),
    ok = mnesia:create_schema([node()]),
    ok = mnesia:start(),
    ok = pharos_acked_mnesia:create_table([node()]),
    Want = by_store(Script, pharos_acked:new(pharos_acked_mnesia, none)),
    NextA = pharos_acked_mnesia:next_seq(<<"sid-a">>, none),
    {stale, none} = pharos_acked_mnesia:commit(<<"sid-a">>, NextA - 1, NextA + 5, fun() -> error(applied) end, none),
    NextA = pharos_acked_mnesia:next_seq(<<"sid-a">>, none),
    stopped = mnesia:stop(),
    ok = mnesia:delete_schema([node()]),
    {Acks, _} = Want,
    io:format("stores: local and mnesia agree with fold_batch over ~b batches~n", [length(Acks)]),
    ok.

%% The acks and the payloads applied, in order, with a map.
by_map(Script) ->
    {Acks, _, Applied} =
        lists:foldl(fun(B, {As, State, Ap}) ->
                            {ok, State1, {_, Ack}, New} = pharos_acked:fold_batch(B, State, fun(P, Acc) -> [P | Acc] end, []),
                            {[Ack | As], State1, lists:reverse(New) ++ Ap}
                    end, {[], #{}, []}, Script),
    {lists:reverse(Acks), Applied}.

%% The same through commit_batch/5: Apply returns the batch's new payloads.
by_store(Script, Store0) ->
    {Acks, _, Applied} =
        lists:foldl(fun(B, {As, Store, Ap}) ->
                            {ok, Store1, {_, Ack}, New} =
                                pharos_acked:commit_batch(B, Store, fun(P, Acc) -> [P | Acc] end, [], fun(Acc) -> Acc end),
                            Ap1 = case New of none -> Ap; _ -> lists:reverse(New) ++ Ap end,
                            {[Ack | As], Store1, Ap1}
                    end, {[], Store0, []}, Script),
    {lists:reverse(Acks), Applied}.
