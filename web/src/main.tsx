import { render } from "preact";
import "@fontsource/atkinson-hyperlegible/400.css";
import "@fontsource/atkinson-hyperlegible/700.css";
import "./styles.css";
import { App } from "./app";

render(<App />, document.getElementById("app")!);
