%% @doc The reference Brain application: a supervisor over the statistics store, the Brain server
%% and the control port.
-module(pharos_brain_app).
-behaviour(application).
-export([start/2, stop/1]).

start(_Type, _Args) -> pharos_brain_sup:start_link().

stop(_State) -> ok.
