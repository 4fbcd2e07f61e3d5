%% @doc The reference Brain: a gen_server registered under a configurable name that accepts every
%% delivery mode of docs/wire.md and records what it receives in pharos_brain_store.
%%
%% Modes, told apart by the message's shape:
%%   Bin when is_binary(Bin)                             payload: binary_to_term(Bin, [safe])
%%   {metric, ...} | {alert, ...}                        term
%%   {Tag, Bin} when is_atom(Tag), is_binary(Bin)        subject
%%   {pharos_batch, ReplyTo, SourceId, FirstSeq, Bins}   acked (see pharos_acked)
%% Anything else is counted as invalid with reason unknown_message.
-module(pharos_brain).
-behaviour(gen_server).
-export([start_link/2, set_delay/2]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2]).

%% An acked batch of 1,000 payloads decodes to about 400 KB of short-lived terms in this process:
%% a young heap of 800 KB (100,000 words) takes a batch or two between collections, where the
%% default one collected several times per batch, copying the batch still being read each time
%% (measured: about a third less CPU per record). It stays below the 128 Ki words above which the
%% runtime moves a collection to a dirty scheduler: with 256 Ki words every collection migrated
%% the process there and back (msacc: the dirty CPU scheduler busy 285 ms in 500), and a 1M-record
%% acked send took 1.31 s against 0.97-0.99 s in one comparison.
-define(MIN_HEAP_WORDS, 100000).

start_link(Name, DelayMs) ->
    gen_server:start_link({local, Name}, ?MODULE, DelayMs,
                          [{spawn_opt, [{min_heap_size, ?MIN_HEAP_WORDS}]}]).

%% @doc Make the Brain slow: every message then costs DelayMs milliseconds.
set_delay(Name, DelayMs) when is_integer(DelayMs), DelayMs >= 0 -> gen_server:call(Name, {set_delay, DelayMs}).

init(DelayMs) ->
    process_flag(message_queue_data, off_heap),
    %% binary_to_term(_, [safe]) refuses atoms the node does not know yet: load the module that
    %% names every atom of docs/wire.md before the first record arrives.
    {module, _} = code:ensure_loaded(pharos_brain_wire),
    %% In a cluster, senders find the Brain through pg (docs/clusters.md): this is the one line a
    %% Brain adds. pg drops the pid when the process ends; a restarted one joins again.
    case application:get_env(pharos_brain, pg, false) of
        true ->
            {ok, Scope} = application:get_env(pharos_brain, pg_scope),
            {ok, Group} = application:get_env(pharos_brain, pg_group),
            ok = pg:join(Scope, Group, self());
        false -> ok
    end,
    {ok, #{delay => pharos_brain_store:get_delay(DelayMs)}}.

handle_call({set_delay, D}, _From, S) ->
    pharos_brain_store:set_delay(D),
    {reply, ok, S#{delay := D}};
handle_call(ping, _From, S) -> {reply, pong, S};
handle_call(_Other, _From, S) -> {reply, {error, unknown_call}, S}.

handle_cast(_Msg, S) -> {noreply, S}.

handle_info(Msg, #{delay := D} = S) ->
    D > 0 andalso timer:sleep(D),
    handle(Msg),
    {noreply, S}.

handle(Bin) when is_binary(Bin) -> payload(payload, Bin);
handle({metric, _, _, _, _, _, _} = Rec) -> record(term, Rec);
handle({alert, _, _, _, _, _, _} = Rec) -> record(term, Rec);
handle({pharos_batch, _ReplyTo, _SourceId, _FirstSeq, _Payloads} = Batch) ->
    %% The batch is decoded and summed up here; its counts and the new NextSeq are then applied
    %% and persisted together by one call to the store process, which outlives crashes of this
    %% server: a crash here never leaves a batch half counted with its NextSeq not moved (the
    %% resend would then count the first half twice).
    case pharos_brain_store:acked_batch(Batch) of
        {ok, {ReplyTo, Ack}} ->
            ReplyTo ! Ack,
            exit_reply_to(ReplyTo);
        {error, Reason} -> pharos_brain_store:invalid(acked, Reason)
    end;
handle({Tag, Bin}) when is_atom(Tag), is_binary(Bin) -> payload(subject, Bin);
handle(_Other) -> pharos_brain_store:invalid(unknown, unknown_message).

%% @doc The control port's exit_reply_to REASON: the next acked batch's ReplyTo gets
%% exit(ReplyTo, Reason) once, after its acknowledgement (a Brain that sends exit signals to the
%% sender, as a test wants one).
exit_reply_to(ReplyTo) ->
    case persistent_term:get({?MODULE, exit_reply_to}, none) of
        none -> ok;
        Reason ->
            persistent_term:erase({?MODULE, exit_reply_to}),
            exit(ReplyTo, Reason)
    end.

payload(Mode, Bin) ->
    case pharos_brain_wire:decode(Bin) of
        {ok, Rec} -> pharos_brain_store:record(Mode, Rec);
        {error, Reason} -> pharos_brain_store:invalid(Mode, Reason)
    end.

record(Mode, Rec) ->
    case pharos_brain_wire:validate(Rec) of
        ok -> pharos_brain_store:record(Mode, Rec);
        {error, Reason} -> pharos_brain_store:invalid(Mode, Reason)
    end.
