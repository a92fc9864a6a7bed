import { mount } from "svelte";
import "./app.css";
import App from "./App.svelte";
import { createBackend } from "./lib/backend";

const target = document.getElementById("app");
if (!target) throw new Error("#app missing");
const backend = await createBackend();
mount(App, { target, props: { backend } });
